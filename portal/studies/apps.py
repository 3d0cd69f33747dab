from django.apps import AppConfig


class StudiesConfig(AppConfig):
    name = "portal.studies"
    label = "studies"

    def ready(self) -> None:
        from portal.studies import checks  # noqa: F401 - registers the deployment check
        from portal.studies.proxy_access import connect_receivers

        connect_receivers()
