"""A demo claim for `manage.py load_demo`: the demo insurer checks two images of the demo study, an exact
export and a retouched copy of it, so the insurer's side of the portal has something to show."""

import numpy as np
import pydicom
from django.contrib.auth.models import User

from portal.claims import imaging, services
from portal.claims.models import Claim
from portal.studies.models import Study

DEMO_REFERENCE = "DEMO-2026-001"


def retouch(grey: np.ndarray, x: int, y: int, radius: float = 9.0) -> np.ndarray:
    """Paint a soft round 'nodule' into a lung-window rendering (what a crude retouch of an export does)."""
    yy, xx = np.mgrid[: grey.shape[0], : grey.shape[1]]
    blob = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * (radius / 2) ** 2))
    return np.clip(grey + blob * (190.0 - grey), 0, 255).astype(np.uint8)


def load_demo_claim(*, clinician: User, insurer: User, study: Study, middle_slice: pydicom.Dataset) -> Claim | None:
    """Share the study with the insurer and file the demo claim (once; None when it exists)."""
    if Claim.objects.filter(insurer=insurer, reference=DEMO_REFERENCE).exists():
        return None  # loaded before (every start of scripts/run.sh asks): no repeated share in the access log
    services.study_share_with_insurer(actor=clinician, study=study, insurer=insurer)
    claim = services.claim_create(actor=insurer, reference=DEMO_REFERENCE, description=(
        "Demo claim: an untouched lung-window export of the demo CT's middle slice, and a copy of it with a "
        "nodule painted into the right lung."))
    services.claim_reference_study(actor=insurer, claim=claim, study_uid=study.study_uid)
    grey = imaging.render_lung(middle_slice)
    rows, cols = grey.shape
    services.claim_add_image(actor=insurer, claim=claim, name="slice-export.png", data=imaging.png_bytes(grey))
    retouched = retouch(grey, x=int(cols * 0.3), y=int(rows * 0.45))
    services.claim_add_image(actor=insurer, claim=claim, name="slice-retouched.png", data=imaging.png_bytes(retouched))
    return claim
