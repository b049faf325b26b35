from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "uploads"

    def ready(self) -> None:
        # Celery's autodiscovery finds uploads.tasks only; ingest keeps its tasks apart.
        from uploads import ingest_tasks  # noqa: F401
