from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "uploads"

    def ready(self) -> None:
        from uploads import signals  # noqa: F401 - connects the meter lock before deletion
