"""Compressed studies in the viewer under the portal's Content-Security-Policy: JPEG 2000 and JPEG-LS frames
are decoded by Cornerstone's WebAssembly codecs, RLE in JavaScript; every slice must load and render."""

import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from tests.conftest import fresh_copies, upload_paths
from tests.e2e.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, JPEGLSLossless, RLELossless], ids=lambda s: s.keyword)
def test_compressed_series_loads_every_slice(syntax, live_server, orthanc, ct_files, user_factory, page, tmp_path):
    paths = fresh_copies(ct_files[45:48], tmp_path)
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.compress(syntax)
        ds.save_as(path, enforce_file_format=True)
    clinician = user_factory("clinician")
    outcome = upload_paths(clinician, paths)
    assert len(outcome.stored) == 3, outcome.errors
    series = outcome.jobs[0].series
    assert pydicom.dcmread(paths[0]).file_meta.TransferSyntaxUID == syntax

    page.goto(f"{live_server.url}/viewer/{series.study.study_uid}/{series.series_uid}")
    log_in(page, clinician.username)
    page.wait_for_function("() => window.__viewerStats && window.__viewerStats.allLoadedMs !== null", timeout=60_000)
    stats = page.evaluate("window.__viewerStats")
    assert stats["slices"] == 3 and stats["failedSlices"] == 0 and stats["firstRenderMs"] is not None, stats
