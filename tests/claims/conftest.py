"""Claims fixtures: a private key dir and file store per test; a small real study in Orthanc."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CT_SUBSET = slice(45, 50)  # five contiguous slices of the real CT: enough for matching, fast to score


@pytest.fixture(autouse=True)
def claims_dirs(settings, tmp_path):
    settings.PORTAL_SIGNING_KEY_DIR = tmp_path / "keys"
    settings.PORTAL_CLAIMS_DIR = tmp_path / "claims"
    settings.PORTAL_SHARES_DIR = tmp_path / "shares"
    return tmp_path


@pytest.fixture
def ct_slice_paths(ct_files) -> list[Path]:
    return ct_files[CT_SUBSET]


@pytest.fixture
def shared_study(orthanc, ct_slice_paths, user_factory):
    """A clinician uploads five real CT slices (through the portal's upload service: STOW to Orthanc, the
    ledger receiver fires) and shares the study with an insurer."""
    from portal.claims.services import study_share_with_insurer
    from portal.studies.models import Study
    from tests.conftest import upload_paths

    clinician = user_factory("clinician")
    insurer = user_factory("insurer")
    outcome = upload_paths(clinician, ct_slice_paths)
    assert len(outcome.stored) == len(ct_slice_paths), outcome.errors
    study = Study.objects.get(study_uid=outcome.stored[0]["study_uid"])
    study_share_with_insurer(actor=clinician, study=study, insurer=insurer)
    return {"study": study, "clinician": clinician, "insurer": insurer}


def png_bytes(array: np.ndarray, fmt: str = "PNG", **kwargs) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def tamper_png(data: bytes, *, x: int, y: int, size: int = 12, value: int = 200) -> bytes:
    """Paint a bright square (a crude 'injected nodule') into an exported PNG."""
    import io

    arr = np.asarray(Image.open(io.BytesIO(data)).convert("L")).copy()
    yy, xx = np.ogrid[:arr.shape[0], :arr.shape[1]]
    arr[(yy - y) ** 2 + (xx - x) ** 2 <= (size // 2) ** 2] = value
    return png_bytes(arr)
