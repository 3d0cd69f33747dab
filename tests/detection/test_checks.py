"""A detector artefact setting that names no artefact is refused at start-up."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from detection.ml.scoring import SINGLE_IMAGE_ARTIFACT


def test_artifact_settings_must_name_an_artifact(settings, tmp_path):
    settings.DETECTOR_ARTIFACT = str(tmp_path / "missing")
    settings.DETECTOR_SINGLE_IMAGE_ARTIFACT = str(tmp_path)
    with pytest.raises(SystemCheckError) as raised:
        call_command("check")
    message = str(raised.value)
    assert "detection.E001" in message and "DETECTOR_ARTIFACT=" in message and "missing" in message
    assert "detection.E002" in message and "DETECTOR_SINGLE_IMAGE_ARTIFACT=" in message


def test_shipped_and_series_settings_pass(settings):
    settings.DETECTOR_ARTIFACT = None
    for value in ("", "series", str(SINGLE_IMAGE_ARTIFACT)):
        settings.DETECTOR_SINGLE_IMAGE_ARTIFACT = value
        call_command("check")
