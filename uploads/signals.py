"""The one signal receiver of the readings: a meter about to be deleted is locked first.

Readings have no foreign key to their meter (uploads.models.Reading), so the database does
not stop a store from writing a meter's readings while the meter is being deleted. The
store locks the meters it writes for (FOR KEY SHARE, uploads.services.readings_store);
this receiver takes the meter's row lock (FOR UPDATE) before Django deletes anything, in
the deletion's transaction. A store already writing makes the deletion wait for its commit,
so the readings DELETE that follows sees (and removes) its rows; a store that starts later
waits for the deletion and then finds the meter gone. SQLite has one writer at a time and
no row locks: there the question does not arise.

pre_delete runs for cascades too (a site's or an organization's deletion), before Django's
fast deletes, and it listens to Meter only: readings are still deleted in one statement.
"""

from django.db.models.signals import pre_delete
from django.dispatch import receiver

from sites.models import Meter


@receiver(pre_delete, sender=Meter, dispatch_uid="uploads.lock_meter_before_delete")
def lock_meter_before_delete(sender, instance: Meter, using: str, **kwargs) -> None:
    list(Meter.objects.using(using).select_for_update().filter(pk=instance.pk).values_list("pk", flat=True))
