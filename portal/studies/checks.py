"""Deployment check (`manage.py check --deploy`): without a shared cache each web process keeps its own
access-log window and learns only of the access it took away itself."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.caches, deploy=True)
def shared_cache(app_configs, **kwargs) -> list[Warning]:  # noqa: ANN001, ARG001 - Django's signature
    if settings.CACHE_URL:
        return []
    return [Warning(
        "CACHE_URL is not set: every web process keeps its own cache, so the study access log records up to "
        "one view per process and hour instead of one, and the DICOMweb proxy of one process serves a study "
        "withdrawn or unshared in another for up to DICOMWEB_PROXY_ACCESS_TTL seconds",
        hint="set CACHE_URL=redis://host:6379/1 (a database apart from the Celery broker's)",
        id="studies.W001",
    )]
