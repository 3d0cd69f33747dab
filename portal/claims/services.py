"""Writes: claims, claim image analysis (provenance + detector), study shares and encrypted exports.

Matching rule for PNG/JPEG claim images (documented in docs/claims.md):
  * candidates are the slices of the studies the claim references (each shared with the insurer);
  * every candidate is rendered exactly like the portal's PNG export (HU -> lung window -> uint8);
  * pixel-hash equality with a signed render hash (LedgerEntry.render_sha256) is an exact match;
  * otherwise the same-shape slice with the smallest mean absolute difference is the nearest original;
    if at most MAX_CHANGED_FRACTION of its pixels differ (beyond the JPEG tolerance for JPEGs) the image
    is "modified" with the differing regions as bounding boxes; a JPEG with no differing region is
    "consistent" (same pixels up to lossy compression); anything else is of unknown origin.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from PIL import Image

from detection.ml.copy_move import find_copy_moves
from detection.ml.copy_move_keypoints import transform_words, with_transformed_copies
from portal.accounts.models import Role
from portal.accounts.services import audit, has_role
from portal.claims import crypto, imaging, ledger
from portal.claims.models import Claim, ClaimImage, EncryptedShare, LedgerEntry
from portal.claims.selectors import readable_studies, studies_shared_with_insurer
from portal.studies import dicomweb
from portal.studies.models import Study, StudyAccess

logger = logging.getLogger(__name__)

MAX_CHANGED_FRACTION = 0.25  # beyond this the "nearest" slice is a different image, not an edited one
JPEG_TOLERANCE = 24  # grey levels of lossy-compression noise ignored when comparing a JPEG
JPEG_MIN_REGION = 9  # JPEG: differing regions smaller than this (pixels) are ringing, not edits
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
# Read from the header before decoding: a few kB of PNG can hold a gigapixel of zeros. 40 MP is above any
# radiograph or mammogram (about 4k x 5.6k) and keeps the analysis' float copies under a few GB.
MAX_IMAGE_PIXELS = 40_000_000
ZIP_DATE = (2000, 1, 1, 0, 0, 0)  # fixed member timestamps: the same inputs give the same archive bytes


def claims_dir() -> Path:
    return Path(getattr(settings, "PORTAL_CLAIMS_DIR", None) or settings.VAR_DIR / "claims")


def shares_dir() -> Path:
    return Path(getattr(settings, "PORTAL_SHARES_DIR", None) or settings.VAR_DIR / "shares")


# --- claims ---------------------------------------------------------------------------------------------

def _require_insurer(actor: User) -> None:
    if not has_role(actor, Role.INSURER, Role.ADMIN):
        raise PermissionDenied("only insurers (and admins) work on claims")


def claim_create(*, actor: User, reference: str, description: str = "") -> Claim:
    _require_insurer(actor)
    reference = reference.strip()
    if not reference:
        raise ValidationError("a claim needs a reference")
    claim = Claim.objects.create(insurer=actor, reference=reference[:128], description=description)
    audit(actor, "claim.create", claim, reference=claim.reference)
    return claim


def claim_reference_study(*, actor: User, claim: Claim, study_uid: str) -> Study:
    """Attach a study to a claim; an insurer may only attach studies a clinician shared with them."""
    _require_insurer(actor)
    pool = Study.objects.current() if has_role(actor, Role.ADMIN) else studies_shared_with_insurer(claim.insurer)
    study = pool.filter(study_uid=study_uid.strip()).first()
    if study is None:
        raise ValidationError("no such study has been shared with this claim's insurer")
    claim.studies.add(study)
    audit(actor, "claim.reference_study", claim, study_uid=study.study_uid)
    return study


def _kind_of(name: str, data: bytes) -> str:
    if len(data) > 132 and data[128:132] == b"DICM":
        return ClaimImage.Kind.DICOM
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ClaimImage.Kind.PNG
    if data.startswith(b"\xff\xd8\xff"):
        return ClaimImage.Kind.JPEG
    raise ValidationError(f"{name}: not a DICOM (Part 10), PNG or JPEG file")


def _refuse_oversized(name: str, width: int, height: int, frames: int = 1) -> None:
    """Called with the header's dimensions, before the pixels are decoded."""
    count = width * height * frames
    if count > MAX_IMAGE_PIXELS:
        raise ValidationError(f"{name}: {width}x{height} pixels ({count / 1e6:.0f} megapixels) is more than the "
                              f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels a claim image may have")


def _check_decodable(name: str, kind: str, data: bytes) -> None:
    """Refuse at upload what the analysis could not read, instead of leaving a check pending forever."""
    try:
        if kind == ClaimImage.Kind.DICOM:
            ds = pydicom.dcmread(io.BytesIO(data))  # pixels stay encoded until pixel_array
            _refuse_oversized(name, int(ds.get("Columns", 0)), int(ds.get("Rows", 0)),
                              int(ds.get("NumberOfFrames", 1) or 1))  # fmt: skip
            if ds.pixel_array.ndim != 2:
                raise ValidationError(f"{name}: only single-frame greyscale DICOM images can be checked")
        else:
            with Image.open(io.BytesIO(data)) as img:  # reads the header only
                _refuse_oversized(name, *img.size)
            imaging.load_raster(data)
    except ValidationError:
        raise
    except Exception as exc:
        raise ValidationError(f"{name}: the image cannot be decoded ({type(exc).__name__}: {exc})") from exc


def claim_add_image(*, actor: User, claim: Claim, name: str, data: bytes) -> ClaimImage:
    """Store one uploaded claim image and analyse it (provenance + detector) right away."""
    _require_insurer(actor)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError(f"{name}: larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
    kind = _kind_of(name, data)
    _check_decodable(name, kind, data)
    sha = hashlib.sha256(data).hexdigest()
    folder = claims_dir() / str(claim.id)
    folder.mkdir(parents=True, exist_ok=True)
    with transaction.atomic():
        # Lock the claim row so two uploads to one claim get distinct positions.
        Claim.objects.select_for_update().filter(pk=claim.pk).first()
        position = (claim.images.order_by("-position").values_list("position", flat=True).first() or 0) + 1
        ext = {"dicom": "dcm", "png": "png", "jpeg": "jpg"}[kind]
        path = folder / f"{position:03d}-upload.{ext}"
        path.write_bytes(data)
        image = ClaimImage.objects.create(
            claim=claim, position=position, kind=kind, original_name=Path(name).name[:255],
            file_sha256=sha, file_path=str(path),
        )
    audit(actor, "claim.add_image", claim, image=image.position, name=image.original_name, sha256=sha)
    from portal.claims.tasks import analyse_claim_image_task

    # A worker runs the analysis (PACS fetches, the detector); eager in tests and single-process setups.
    analyse_claim_image_task.delay(image.pk)
    image.refresh_from_db()
    return image


def analyse_image(*, image: ClaimImage) -> ClaimImage:
    data = Path(image.file_path).read_bytes()
    analyse = _analyse_dicom if image.kind == ClaimImage.Kind.DICOM else _analyse_raster
    analysis = analyse(image, data)
    analysis["detector"] = _detect(image, analysis.pop("_detector_input"))
    analysis["copy_move"] = _copy_move(image, analysis.pop("_grey"))
    status, reasons = final_status(analysis["provenance"], analysis["detector"], analysis["copy_move"])
    analysis["status"], analysis["reasons"] = status, reasons
    image.provenance = analysis["provenance"]["status"]
    image.status = status
    image.result = analysis
    image.save(update_fields=["provenance", "status", "result"])
    audit(None, "claim.analyse_image", image.claim, image=image.position, provenance=image.provenance,
          status=status)
    return image


def _copy_move(image: ClaimImage, grey: np.ndarray) -> dict:
    """Regions cloned inside the image itself (detection.ml.copy_move), also turned or resized on the way
    (detection.ml.copy_move_keypoints): needs no original, so it also checks images of unknown origin. Both
    places of each clone are boxed in a figure."""
    try:
        found = with_transformed_copies([clone.as_dict() for clone in find_copy_moves(grey)[:5]], grey)[:5]
    except Exception as exc:  # the report must still show provenance and the detector when the check fails
        logger.exception("copy-move check failed on claim image %s", image.pk)
        return {"found": [], "error": f"{type(exc).__name__}: {exc}"}
    out: dict = {"found": found}
    if found:
        boxes = [{"x": x, "y": y, "w": w, "h": h}
                 for clone in found for x, y, w, h in (clone["first"], clone["second"])]
        out["overlay"] = _save_png(image, "copy_move", imaging.overlay_boxes(grey, boxes))
    return out


def copy_move_reason(clone: dict) -> str:
    (x0, y0, w, h), (x1, y1, _, _) = clone["first"], clone["second"]
    return (f"copy-move: the same content at two places of the image ({w}x{h} px at x={x0} y={y0} and at x={x1} "
            f"y={y1}): one was copied onto the other{transform_words(clone)}")


def final_status(provenance: dict, detector: dict, copy_move: dict | None = None) -> tuple[str, list[str]]:
    """``copy_move``: _copy_move's result (absent in results recorded before it existed)."""
    reasons: list[str] = list(provenance.get("reasons", []))
    cloned = (copy_move or {}).get("found", [])
    reasons += [copy_move_reason(clone) for clone in cloned]
    flagged = (detector.get("available") and detector.get("trained") and detector.get("calibrated", True)
               and detector.get("tampered"))
    if detector.get("available") and not detector.get("trained"):
        reasons.append("detector weights are untrained: its scores are shown but do not affect the status")
    elif detector.get("available") and not detector.get("calibrated", True):
        reasons.append(f"detector model {detector['model']} has no threshold calibrated for single images: its "
                       "scores are shown but do not affect the status")
    elif detector.get("available") and detector.get("scored_locations") == 0:
        reasons.append(f"detector model {detector['model']} found no lung tissue to score in this image (it scores "
                       "locations in and around the lungs only): no detector verdict")
    elif detector.get("available"):
        threshold = f", single-image threshold {detector['threshold']}" if detector.get("threshold") else ""
        reasons.append(
            f"detector verdict {detector['verdict']} (tamper probability {detector['tamper']:.3f}{threshold}, "
            f"model {detector['model']})"
        )
    else:
        reasons.append(f"detector not available: {detector.get('error', 'unknown error')}")
    prov = provenance["status"]
    if prov == ClaimImage.Provenance.MODIFIED:
        return ClaimImage.Status.TAMPERED, reasons
    if cloned:  # even an exact match: the original itself was edited before it reached the portal
        return ClaimImage.Status.SUSPICIOUS, reasons
    if prov in (ClaimImage.Provenance.EXACT, ClaimImage.Provenance.CONSISTENT):
        if flagged:
            reasons.append("matches the signed original, but the detector flags it: the original itself may "
                           "have been tampered before it reached the portal")
            return ClaimImage.Status.SUSPICIOUS, reasons
        return ClaimImage.Status.AUTHENTIC, reasons
    if flagged:
        return ClaimImage.Status.SUSPICIOUS, reasons
    return ClaimImage.Status.UNVERIFIED, reasons


def _save_png(image: ClaimImage, label: str, array: np.ndarray) -> str:
    claim_image_path(image, label).write_bytes(imaging.png_bytes(array))
    return label


def _entry_ref(entry: LedgerEntry, keys) -> dict:
    problems = ledger.verify_entry(entry, keys)
    return {"seq": entry.seq, "key_id": entry.key_id, "entry_hash": entry.entry_hash,
            "signature_valid": not problems, "problems": problems, "recorded_at": ledger._value(entry, "recorded_at"),
            "study_uid": entry.study_uid, "series_uid": entry.series_uid, "sop_instance_uid": entry.sop_instance_uid,
            "pixel_sha256": entry.pixel_sha256, "render_sha256": entry.render_sha256}


def fetch_original(entry: LedgerEntry) -> pydicom.Dataset:
    """The PACS copy of a ledgered instance; refuses it unless its pixels still match the signed hash."""
    ds = dicomweb.retrieve_instance(entry.study_uid, entry.series_uid, entry.sop_instance_uid)
    actual = imaging.pixel_hash(ds.pixel_array)
    if actual != entry.pixel_sha256:
        raise OriginalMismatch(mismatch_reason(entry, actual))
    return ds


def mismatch_reason(entry: LedgerEntry, actual_pixel_sha256: str) -> str:
    """Why the PACS copy is not the signed original: re-stored through the portal later, or changed outside it."""
    head = f"the PACS copy of {entry.sop_instance_uid} no longer has the pixels signed at ledger #{entry.seq}"
    later = (
        LedgerEntry.objects.filter(sop_instance_uid=entry.sop_instance_uid, seq__gt=entry.seq,
                                   pixel_sha256=actual_pixel_sha256)  # fmt: skip
        .order_by("seq")
        .first()
    )
    if later is not None:
        again = f"ledger #{later.seq}, {later.recorded_at:%Y-%m-%d %H:%M} UTC"
        return f"{head}: the same SOP Instance UID was uploaded again with other pixels ({again}); the PACS kept that"
    return f"{head}: no upload signed by the portal has these pixels, so they were changed in the PACS"


class OriginalMismatch(Exception):
    pass


def _comparable_studies(claim: Claim) -> QuerySet[Study]:
    """The claim's referenced studies its insurer may still read: a clinician who revokes the share stops new
    comparisons with (and figures of) that study, while the claim keeps its record of the reference."""
    return claim.studies.filter(pk__in=readable_studies(claim.insurer).values("pk"))


def _claim_study_uids(claim: Claim) -> set[str]:
    return set(_comparable_studies(claim).values_list("study_uid", flat=True))


def _diff_report(image: ClaimImage, grey: np.ndarray, result: imaging.Diff, original_grey: np.ndarray) -> dict:
    return {
        "changed_pixels": result.changed_pixels,
        "changed_fraction": round(result.changed_pixels / grey.size, 6),
        "max_abs_difference": result.max_abs,
        "boxes": result.boxes[:20],
        "regions": len(result.boxes),
        "images": {
            "original": _save_png(image, "original", imaging.to_uint8(original_grey)),
            "diff": _save_png(image, "diff", imaging.diff_map(grey, result)),
            "overlay": _save_png(image, "overlay", imaging.overlay_boxes(grey, result.boxes, result.mask)),
        },
    }


def _analyse_dicom(image: ClaimImage, data: bytes) -> dict:
    keys = crypto.public_keys()
    ds = pydicom.dcmread(io.BytesIO(data))
    pixels = ds.pixel_array
    if pixels.ndim != 2:
        raise ValidationError("only single-frame DICOM images can be checked")
    phash = imaging.pixel_hash(pixels)
    grey = imaging.render_lung(ds)
    uid = str(getattr(ds, "SOPInstanceUID", ""))
    out: dict = {
        "input": {"kind": image.kind, "name": image.original_name, "file_sha256": image.file_sha256,
                  "pixel_sha256": phash, "shape": list(pixels.shape), "sop_instance_uid": uid,
                  "study_uid": str(getattr(ds, "StudyInstanceUID", ""))},
        "images": {"input": _save_png(image, "input", grey)},
        "_detector_input": ("dicom", ds),
        "_grey": grey,
    }
    entries = [e for e in ledger.entries_for_uid(uid) if not ledger.verify_entry(e, keys)] if uid else []
    exact = next((e for e in entries if e.pixel_sha256 == phash), None)
    if exact is None and not entries:
        # UIDs may have been rewritten on export; identical pixels still prove the origin.
        exact = next((e for e in LedgerEntry.objects.filter(pixel_sha256=phash).order_by("seq")
                      if not ledger.verify_entry(e, keys)), None)
    if exact is not None:
        how = "SOP Instance UID" if exact.sop_instance_uid == uid else "pixel hash (UIDs differ)"
        out["provenance"] = {
            "status": ClaimImage.Provenance.EXACT, "matched_by": how, "ledger": _entry_ref(exact, keys),
            "reasons": [f"decoded pixels are identical to the signed original (ledger #{exact.seq}, "
                        f"matched by {how})"],
        }
        return out
    if not entries:
        out["provenance"] = {"status": ClaimImage.Provenance.UNKNOWN, "ledger": None,
                             "reasons": ["no signed original with this SOP Instance UID or these pixels"]}
        return out
    original_entry = entries[0]
    prov: dict = {"status": ClaimImage.Provenance.MODIFIED, "matched_by": "SOP Instance UID",
                  "ledger": _entry_ref(original_entry, keys),
                  "reasons": [f"pixel data differ from the signed original (ledger #{original_entry.seq})"]}
    out["provenance"] = prov
    if original_entry.study_uid not in _claim_study_uids(image.claim):
        prov["reasons"].append("the original's study is not referenced by this claim (or no longer shared with "
                               "its insurer), so the portal does not show where it differs; ask the clinician "
                               "to share it")
        return out
    try:
        original = fetch_original(original_entry)
    except (OriginalMismatch, dicomweb.PacsUnavailable, dicomweb.PacsRejected) as exc:
        prov["reasons"].append(f"original could not be compared: {exc}")
        return out
    if original.pixel_array.shape != pixels.shape:
        prov["reasons"].append(f"image size changed from {original.pixel_array.shape} to {pixels.shape}")
        return out
    result = imaging.diff(pixels, original.pixel_array)
    prov["diff"] = _diff_report(image, grey, result, imaging.render_lung(original))
    prov["reasons"].append(f"{result.changed_pixels} pixel(s) changed in {len(result.boxes)} region(s)")
    return out


@dataclass
class Candidate:
    entry: LedgerEntry
    render: np.ndarray


def _candidates(claim: Claim, shape: tuple[int, ...]) -> list[Candidate]:
    """Rendered signed originals of the claim's studies; PACS copies that fail the ledger are skipped."""
    keys = crypto.public_keys()
    out = []
    for study in _comparable_studies(claim).order_by("study_uid"):
        by_uid = {}
        for e in LedgerEntry.objects.filter(study_uid=study.study_uid).order_by("seq"):
            if list(e.pixel_shape) == list(shape) and not ledger.verify_entry(e, keys):
                by_uid.setdefault(e.sop_instance_uid, []).append(e)
        for series_uid in sorted({es[0].series_uid for es in by_uid.values()}):
            for ds in dicomweb.retrieve_series(study.study_uid, series_uid):
                entries = by_uid.get(str(ds.SOPInstanceUID), [])
                phash = imaging.pixel_hash(ds.pixel_array)
                entry = next((e for e in entries if e.pixel_sha256 == phash), None)
                if entry is not None:
                    out.append(Candidate(entry, imaging.render_lung(ds)))
    out.sort(key=lambda c: c.entry.seq)
    return out


def _analyse_raster(image: ClaimImage, data: bytes) -> dict:
    keys = crypto.public_keys()
    grey = imaging.load_raster(data)
    rhash = imaging.pixel_hash(grey)
    out: dict = {
        "input": {"kind": image.kind, "name": image.original_name, "file_sha256": image.file_sha256,
                  "pixel_sha256": rhash, "shape": list(grey.shape)},
        "images": {"input": _save_png(image, "input", grey)},
        "_detector_input": ("raster", grey),
        "_grey": grey,
        "matching_rule": "compared with every slice of the referenced studies rendered with the portal's "
                         "lung-window export; equal render hash = exact match",
    }
    study_uids = _claim_study_uids(image.claim)
    if not study_uids:
        reason = ("the studies this claim references are no longer shared with its insurer"
                  if image.claim.studies.exists() else "the claim references no study to compare this image with")
        out["provenance"] = {"status": ClaimImage.Provenance.UNKNOWN, "ledger": None, "reasons": [reason]}
        return out
    exact = next((e for e in LedgerEntry.objects.filter(render_sha256=rhash, study_uid__in=study_uids)
                  .order_by("seq") if not ledger.verify_entry(e, keys)), None)
    if exact is not None:
        out["provenance"] = {"status": ClaimImage.Provenance.EXACT, "matched_by": "rendered pixel hash",
                             "ledger": _entry_ref(exact, keys),
                             "reasons": [f"identical to the portal's lung-window rendering of the signed "
                                         f"original (ledger #{exact.seq})"]}
        return out
    try:
        candidates = _candidates(image.claim, grey.shape)
    except (dicomweb.PacsUnavailable, dicomweb.PacsRejected) as exc:
        out["provenance"] = {"status": ClaimImage.Provenance.UNKNOWN, "ledger": None,
                             "reasons": [f"originals could not be fetched from the PACS: {exc}"]}
        return out
    if not candidates:
        out["provenance"] = {"status": ClaimImage.Provenance.UNKNOWN, "ledger": None,
                             "reasons": ["no signed slice of the referenced studies has this image size"]}
        return out
    g = grey.astype(np.int16)
    mad = [float(np.abs(g - c.render.astype(np.int16)).mean()) for c in candidates]
    best = candidates[int(np.argmin(mad))]
    tolerance = JPEG_TOLERANCE if image.kind == ClaimImage.Kind.JPEG else 0
    result = imaging.diff(grey, best.render, tolerance=tolerance)
    if image.kind == ClaimImage.Kind.JPEG:
        kept = [b for b in result.boxes if b["pixels"] >= JPEG_MIN_REGION]
        result = imaging.Diff(sum(b["pixels"] for b in kept), result.max_abs, kept, result.mask)
    fraction = result.changed_pixels / grey.size
    nearest = {"ledger": _entry_ref(best.entry, keys), "mean_abs_difference": round(min(mad), 4),
               "changed_fraction": round(fraction, 6)}
    if fraction > MAX_CHANGED_FRACTION:
        out["provenance"] = {"status": ClaimImage.Provenance.UNKNOWN, "ledger": None, "nearest": nearest,
                             "reasons": [f"no slice of the referenced studies matches: the nearest differs in "
                                         f"{fraction:.0%} of its pixels"]}
        return out
    if result.changed_pixels == 0:
        out["provenance"] = {"status": ClaimImage.Provenance.CONSISTENT, "matched_by": "nearest rendered slice",
                             "ledger": nearest["ledger"], "nearest": nearest,
                             "reasons": [f"equal to the signed original (ledger #{best.entry.seq}) within "
                                         f"JPEG tolerance ({JPEG_TOLERANCE} grey levels)"]}
        return out
    out["provenance"] = {
        "status": ClaimImage.Provenance.MODIFIED, "matched_by": "nearest rendered slice",
        "ledger": nearest["ledger"], "nearest": nearest,
        "diff": _diff_report(image, grey, result, best.render),
        "reasons": [f"nearest signed original is slice {best.entry.sop_instance_uid} (ledger #{best.entry.seq}); "
                    f"{result.changed_pixels} pixel(s) differ in {len(result.boxes)} localized region(s)"],
    }
    return out


def _detect(image: ClaimImage, detector_input: tuple[str, object]) -> dict:
    """Passive detection of one image scored alone by the single-image model (the active series model
    where there is none), with its threshold for single images of that kind (detection.ml.single_image):
    DICOM as HU at its spacing; PNG/JPEG mapped back to HU through the lung window. A model without that
    calibration reports its scores but cannot flag the image."""
    from detection.services import current_model_version, get_detector, get_single_image_detector, modality_not_scored

    kind, payload = detector_input
    if kind == "dicom" and (reason := modality_not_scored(str(payload.get("Modality", "")), "image")):
        return {"available": False, "error": reason}
    try:
        from detection.ml import single_image  # inside: a model that cannot load leaves provenance standing

        detector, version = get_single_image_detector(), None
        if detector is None:
            version = current_model_version()
            detector = get_detector(version)
        if kind == "dicom":
            threshold = detector.single_image_thresholds.get("dicom")
            res = detector.score_series([payload], threshold=threshold)
            path = "the DICOM slice scored alone (HU at its pixel spacing)"
        else:
            threshold = detector.single_image_thresholds.get("lung_png")
            res = detector.score_volume(single_image.grey_to_hu(payload)[None], single_image.PNG_SPACING,
                                        threshold=threshold)
            path = ("the image scored alone: grey levels mapped back to HU through the lung window (values "
                    "outside the window are clipped), 1 mm pixels")
    except Exception as exc:  # the report must still show provenance when the model cannot run
        logger.exception("detector failed on claim image %s", image.pk)
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"}
    probs = {c: round(float(p), 6) for c, p in zip(("TB", "TM", "FB", "FM"), res.slice_probs[0], strict=True)}
    tamper = float(res.slice_tamper[0])
    grey = payload if kind == "raster" else imaging.render_lung(payload)
    heat = np.asarray(res.heatmaps[0], dtype=np.float32)
    calibrated = threshold is not None
    return {
        "available": True, "path": path, "model": f"{res.model_name}:{res.model_version}",
        "model_kind": "series" if version else "single-image",
        "model_version_id": version.pk if version else None, "trained": bool(res.trained), "calibrated": calibrated,
        "threshold": None if threshold is None else round(float(threshold), 7),
        "verdict": res.verdict, "verdict_score": round(float(res.verdict_score), 6), "tamper": round(tamper, 6),
        "tampered": calibrated and res.verdict in ("FB", "FM"), "probs": probs, "scored_locations": res.n_patches,
        "locations": [{"x": loc.x, "y": loc.y, "tamper": round(float(loc.tamper), 6)} for loc in res.locations[:5]],
        "heatmap": _save_png(image, "heatmap", imaging.heatmap_overlay(grey, heat, threshold)),
        "heatmap_colours": "amber below the threshold, red at it",
    }


# --- referenced studies -----------------------------------------------------------------------------------

def claim_image_path(image: ClaimImage, label: str) -> Path:
    # Next to the uploaded file, wherever the web process that received it kept it (workers may differ).
    return Path(image.file_path).parent / f"{image.position:03d}-{label}.png"


# --- sharing ----------------------------------------------------------------------------------------------

def study_share_with_insurer(*, actor: User, study: Study, insurer: User) -> StudyAccess:
    """A clinician who can see a study (or an admin) shares it with an insurer for claim checks."""
    if not has_role(actor, Role.CLINICIAN, Role.ADMIN):
        raise PermissionDenied("only clinicians and admins share studies with insurers")
    if not readable_studies(actor).filter(pk=study.pk).exists():
        raise PermissionDenied("you cannot share a study you cannot see")
    if not has_role(insurer, Role.INSURER):
        raise ValidationError(f"{insurer.username} is not an insurer")
    access, created = StudyAccess.objects.get_or_create(
        study=study, user=insurer, defaults={"kind": StudyAccess.Kind.SHARE, "granted_by": actor}
    )
    audit(actor, "study.share_insurer", study, insurer=insurer.username, created=created)
    return access


def study_unshare_with_insurer(*, actor: User, study: Study, insurer: User) -> None:
    """Withdraw an insurer's access to a study (the same people who may grant it). The insurer's claims keep
    their reference and finished reports; new checks no longer compare with the study."""
    if not has_role(actor, Role.CLINICIAN, Role.ADMIN):
        raise PermissionDenied("only clinicians and admins share studies with insurers")
    if not readable_studies(actor).filter(pk=study.pk).exists():
        raise PermissionDenied("you cannot change the sharing of a study you cannot see")
    deleted, _ = StudyAccess.objects.filter(study=study, user=insurer, kind=StudyAccess.Kind.SHARE,
                                            user__groups__name=Role.INSURER).delete()
    if not deleted:
        raise StudyAccess.DoesNotExist(f"{insurer.username} has no insurer access to this study")
    audit(actor, "study.unshare_insurer", study, insurer=insurer.username)


def _deterministic_zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(members):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _study_members(study: Study) -> list[tuple[str, bytes]]:
    """The study's instances as the portal ingested them; refuses (PacsRejected) rather than seal a study the
    PACS has lost part of, since the recipient could not tell the archive is incomplete."""
    members, missing = [], []
    for series in study.series.order_by("series_uid"):
        # The PACS may hold more of this study than the portal indexed (other uploaders, other tools):
        # share only what the portal itself ingested and signed.
        indexed = set(series.instances.values_list("sop_instance_uid", flat=True))
        for ds in dicomweb.retrieve_series(study.study_uid, series.series_uid):
            if ds.SOPInstanceUID not in indexed:
                continue
            indexed.discard(ds.SOPInstanceUID)
            members.append((f"{series.series_uid}/{ds.SOPInstanceUID}.dcm", dicomweb.file_bytes(ds)))
        missing += sorted(indexed)
    if missing:
        raise dicomweb.PacsRejected(
            f"the PACS no longer holds {len(missing)} of the {len(members) + len(missing)} instances the portal "
            f"stored for this study (first: {missing[0]}); nothing was shared")
    return members


def _claim_members(claim: Claim) -> list[tuple[str, bytes]]:
    from portal.claims.report import render_pdf

    members = [("report.pdf", render_pdf(claim))]
    for image in claim.images.order_by("position"):
        members.append((f"images/{Path(image.file_path).name}", Path(image.file_path).read_bytes()))
        members.append((f"images/{image.position:03d}-result.json",
                        json.dumps(image.result, sort_keys=True, indent=1).encode()))
    return members


@dataclass(frozen=True)
class ShareOutcome:
    share: EncryptedShare
    key: str  # base64url AES-256 key: shown once, never stored


def encrypted_share_create(*, actor: User, study: Study | None = None, claim: Claim | None = None,
                           recipient: str = "") -> ShareOutcome:
    """Seal a study (clinician/admin) or a claim bundle (admin) as an AES-256-GCM archive."""
    if (study is None) == (claim is None):
        raise ValidationError("share exactly one study or one claim")
    if study is not None:
        if not has_role(actor, Role.CLINICIAN, Role.ADMIN) or not readable_studies(actor).filter(pk=study.pk).exists():
            raise PermissionDenied("only a clinician who can see the study, or an admin, may export it")
        members = _study_members(study)
    else:
        if not has_role(actor, Role.ADMIN):
            raise PermissionDenied("only admins export claim bundles")
        members = _claim_members(claim)
    manifest = [{"name": n, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in sorted(members)]
    members.append(("manifest.json", json.dumps(manifest, sort_keys=True, indent=1).encode()))
    share = EncryptedShare(kind=EncryptedShare.Kind.STUDY if study else EncryptedShare.Kind.CLAIM,
                           study=study, claim=claim, created_by=actor, recipient=recipient[:255])
    header = {"format": "mitp-share/1", "cipher": "AES-256-GCM", "share_id": str(share.id), "kind": share.kind,
              "subject": study.study_uid if study else str(claim.id), "files": len(manifest)}
    sealed = crypto.seal(_deterministic_zip(members), header)
    shares_dir().mkdir(parents=True, exist_ok=True)
    path = shares_dir() / f"{share.id}.mitp"
    path.write_bytes(sealed.blob)
    share.key_sha256, share.header = sealed.key_sha256, header
    share.archive_path, share.archive_size = str(path), len(sealed.blob)
    share.save()
    audit(actor, "share.encrypted_create", share, kind=share.kind, subject=header["subject"],
          recipient=recipient, files=len(manifest))
    return ShareOutcome(share=share, key=sealed.key_b64)


def encrypted_share_open(*, actor: User | None, blob: bytes, key_text: str) -> dict:
    """Decrypt and verify an archive: GCM tag (wrong key / tampering), manifest hashes, and for DICOM files
    whether their pixels still match the signed ledger. Raises crypto.DecryptionError with a clear message."""
    header, _, _, _ = crypto.read_header(blob)
    key = crypto.decode_key(key_text)
    known = EncryptedShare.objects.filter(pk=header.get("share_id")).first() if header.get("share_id") else None
    if known is not None and known.key_sha256 != crypto.key_fingerprint(key):
        audit(actor, "share.import_failed", known, reason="wrong key")
        raise crypto.DecryptionError("wrong key for this archive")
    try:
        header, plaintext = crypto.open_sealed(blob, key)
    except crypto.DecryptionError:
        audit(actor, "share.import_failed", object_type="EncryptedShare", object_id=str(header.get("share_id")),
              reason="integrity check failed")
        raise
    with zipfile.ZipFile(io.BytesIO(plaintext)) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    manifest = json.loads(files.pop("manifest.json", b"[]"))
    problems, ledger_ok = [], 0
    for item in manifest:
        data = files.get(item["name"])
        if data is None or hashlib.sha256(data).hexdigest() != item["sha256"]:
            problems.append(f"{item['name']}: missing or altered")
            continue
        if item["name"].endswith(".dcm"):
            ds = pydicom.dcmread(io.BytesIO(data))
            if LedgerEntry.objects.filter(pixel_sha256=imaging.pixel_hash(ds.pixel_array)).exists():
                ledger_ok += 1
            else:
                problems.append(f"{item['name']}: pixels not in the provenance ledger")
    audit(actor, "share.import", object_type="EncryptedShare", object_id=str(header.get("share_id")),
          files=len(manifest), problems=len(problems))
    return {"header": header, "files": [m["name"] for m in manifest], "ledger_verified": ledger_ok,
            "problems": problems, "ok": not problems, "_members": files}
