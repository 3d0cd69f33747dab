from django.apps import AppConfig


class DetectionConfig(AppConfig):
    name = "detection"

    def ready(self) -> None:
        from detection import checks, receivers  # noqa: F401 - registers the system checks and the alert
