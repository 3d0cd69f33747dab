"""System checks: a detector artefact setting that names no artefact fails at start-up (``manage.py check``,
``migrate``, runserver), not at the first upload or claim image it would score."""

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, register


@register()
def detector_artifacts(app_configs, **kwargs) -> list[Error]:  # noqa: ANN001, ARG001 - Django's signature
    errors = []
    for setting, error_id, allowed in (("DETECTOR_ARTIFACT", "detection.E001", ()),
                                       ("DETECTOR_SINGLE_IMAGE_ARTIFACT", "detection.E002", ("series",))):
        value = getattr(settings, setting, None)
        if value and value not in allowed and not (Path(value) / "config.json").is_file():
            errors.append(Error(
                f"{setting}={value!r} names no detector artefact (no config.json there)",
                hint="point it at a directory written by `python -m detection.cli train`"
                     + (", or set it to 'series'" if allowed else "") + ", or unset it for the shipped model",
                id=error_id,
            ))
    return errors
