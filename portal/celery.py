import os

from celery import Celery
from celery.signals import worker_shutdown

import core.broker  # noqa: F401 - registers the portalfs:// transport of the embedded default

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_shutdown.connect
def _close_connection_pools(**kwargs) -> None:
    from core.db import connection_pools_close

    connection_pools_close()
