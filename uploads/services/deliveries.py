"""Deliveries: the push of stored rows to the vendors. (Being written: see issue 4.)"""

from uploads.models import Delivery, Upload


def deliveries_create_for_upload(*, upload: Upload) -> list[Delivery]:
    """Create one delivery per (meter, target) of a stored upload and enqueue their pushes
    on commit. Idempotent: an existing delivery is returned, not duplicated."""
    raise NotImplementedError
