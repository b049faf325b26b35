"""Helpers for tests that wait on a real worker."""

import time

from uploads.models import Delivery, DeliveryStatus

DONE = (DeliveryStatus.DELIVERED, DeliveryStatus.PARTIALLY_FAILED, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)


def wait_for(predicate, *, timeout: float = 60, what: str = "condition", worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f"\n{worker.log()}" if worker else ""))


def wait_done(*deliveries, timeout: float = 60, worker=None) -> list[Delivery]:
    """The deliveries, reloaded once all of them reached an end status."""
    pks = [d.pk for d in deliveries]

    def done():
        rows = list(Delivery.objects.filter(pk__in=pks).order_by("pk"))
        return rows if all(d.status in DONE for d in rows) else None

    return wait_for(done, timeout=timeout, what=f"deliveries {pks} to finish", worker=worker)
