import os

from celery import Celery

import core.broker  # noqa: F401 - registers the portalfs:// transport of the embedded default

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
