"""Does the PACS still hold what the portal signed at upload? Every indexed instance of a study is fetched
from the PACS (one WADO-RS request per series), its decoded pixels hashed and compared with the provenance
ledger: the CT-GAN attack changes scans inside the PACS, after they were stored. Header edits that change how
matching pixels read (Hounsfield conversion, slice position, pixel spacing, patient) are found too."""

from __future__ import annotations

import time
from collections import defaultdict

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail

from portal.accounts.services import audit
from portal.claims import crypto, imaging, ledger
from portal.claims.models import LedgerEntry
from portal.claims.services import mismatch_reason
from portal.studies import dicomweb, header
from portal.studies.ingest import slice_position
from portal.studies.models import Instance, Study

PROBLEM_KINDS = ("changed", "missing", "unverifiable")  # each a list of {series_uid, sop_instance_uid, ...}
POSITION_TOLERANCE_MM = 1e-3  # the index keeps the position computed at upload from the same header


def study_integrity(*, actor: User | None, study: Study) -> dict:
    """{"ok", "checked", "matching", "changed", "missing", "unverifiable", "seconds"}; each problem list holds
    {"series_uid", "sop_instance_uid", "slice_index", "reason"}. Raises PacsUnavailable when the PACS is down."""
    started = time.monotonic()
    keys = crypto.public_keys()
    entries: dict[str, list[LedgerEntry]] = defaultdict(list)
    for entry in LedgerEntry.objects.filter(study_uid=study.study_uid).order_by("seq"):
        entries[entry.sop_instance_uid].append(entry)
    result: dict = {"checked": 0, "matching": 0, **{kind: [] for kind in PROBLEM_KINDS}}
    for series in study.series.prefetch_related("instances"):
        in_pacs = {ds.SOPInstanceUID: ds for ds in dicomweb.retrieve_series(study.study_uid, series.series_uid)}
        for instance in sorted(series.instances.all(), key=lambda i: (i.slice_index is None, i.slice_index)):
            result["checked"] += 1
            where = {"series_uid": series.series_uid, "sop_instance_uid": instance.sop_instance_uid,
                     "slice_index": instance.slice_index}
            ds = in_pacs.get(instance.sop_instance_uid)
            kind, reason = _check(ds, entries[instance.sop_instance_uid], keys, instance=instance,
                                  patient_id=study.patient.patient_id)  # fmt: skip
            if kind == "matching":
                result["matching"] += 1
            else:
                result[kind].append({**where, "reason": reason})
    result["ok"] = not any(result[kind] for kind in PROBLEM_KINDS)
    result["seconds"] = round(time.monotonic() - started, 3)
    audit(actor, "study.integrity_check", study, checked=result["checked"],
          **{kind: len(result[kind]) for kind in PROBLEM_KINDS})
    return result


def _check(ds, entries: list[LedgerEntry], keys, *, instance: Instance, patient_id: str) -> tuple[str, str]:
    """("matching" | "changed" | "missing" | "unverifiable", why)."""
    if ds is None:
        return "missing", "the PACS no longer holds this instance"
    if not entries:
        return "unverifiable", "no provenance record: it was not stored through the portal's upload"
    signed = [e for e in entries if e.pixel_sha256]
    if not signed:
        return "unverifiable", "recorded without image pixels the portal could decode; only its file hash is signed"
    try:
        pixels = imaging.decoded_pixels(ds)
    except Exception as exc:  # noqa: BLE001 - an undecodable PACS copy is itself the finding
        return "changed", f"the PACS copy's pixels cannot be decoded any more ({type(exc).__name__})"
    actual = imaging.pixel_hash(pixels)
    same = [e for e in signed if e.pixel_sha256 == actual]
    if not same:
        return "changed", mismatch_reason(signed[0], actual)
    if problems := ledger.verify_entry(same[-1], keys):
        return "unverifiable", f"ledger entry #{same[-1].seq} fails verification: {'; '.join(problems)}"
    if change := _header_change(ds, pixels, same[-1], instance, patient_id):
        return "changed", f"its pixels are as signed, but {change}"
    return "matching", ""


def _header_change(ds, pixels, entry: LedgerEntry, instance: Instance, patient_id: str) -> str:
    """A header change that alters how the image reads though its stored pixels are unchanged: the values'
    conversion to Hounsfield units (checked against the signed lung-window rendering), the slice's place in
    the scan, its pixel spacing (what a measured size reads), or whose scan it is (against the index made at
    upload). '' when there is none."""
    rendered = entry.render_sha256 and pixels.ndim == 2
    if rendered and imaging.pixel_hash(imaging.render_lung(ds, pixels)) != entry.render_sha256:
        slope, intercept = imaging.rescale(ds)
        return (f"the header's conversion to Hounsfield units changed (now RescaleSlope {slope:g}, "
                f"RescaleIntercept {intercept:g}): the image shows other densities than at upload")  # fmt: skip
    z = slice_position(ds)
    if instance.z is not None and (z is None or abs(z - instance.z) > POSITION_TOLERANCE_MM):
        now = "none" if z is None else f"{z:g} mm"
        return f"its position along the scan changed ({instance.z:g} mm at upload, {now} now): the slices' order moved"
    spacing = _floats(header.value(ds, "PixelSpacing"))
    if instance.pixel_spacing and (len(spacing) != len(instance.pixel_spacing) or any(
            abs(a - b) > POSITION_TOLERANCE_MM for a, b in zip(spacing, instance.pixel_spacing, strict=False))):
        was, now = (" × ".join(f"{v:g}" for v in values) or "none" for values in (instance.pixel_spacing, spacing))
        return (f"its pixel spacing changed ({was} mm at upload, {now} now): distances and sizes read "
                f"differently (a nodule's measured size)")  # fmt: skip
    if str(header.value(ds, "PatientID") or "UNKNOWN") != patient_id:
        return "the header names another patient than at upload (PatientID changed)"
    return ""


def _floats(value) -> list[float]:
    try:
        return [float(v) for v in value or ()]
    except (TypeError, ValueError):
        return []


# A withdrawn study keeps its images in the PACS (nothing is deleted), so they are checked too: a change there
# still matters to the medical record, but only admins can open the study.
WITHDRAWN_NOTE = " (withdrawn: only admins open it)"


def send_integrity_alert(findings: list[tuple[Study, dict]]) -> int:
    """Email TAMPER_ALERT_EMAILS the studies whose PACS images were changed or lost (links only, no patient).
    Returns the number of recipients."""
    if not settings.TAMPER_ALERT_EMAILS or not findings:
        return 0
    lines = ["The nightly integrity check found images in the PACS that differ from what the portal signed at "
             "upload, or that the PACS lost:", ""]
    for study, report in findings:
        lines.append(f"- {len(report['changed'])} changed, {len(report['missing'])} missing of {report['checked']}: "
                     f"{settings.PORTAL_URL}/studies/{study.study_uid}{WITHDRAWN_NOTE if study.withdrawn_at else ''}")
    lines += ["", "Open each study (sign-in required) and use Integrity for the slices and reasons. This message "
              "names no patient."]
    send_mail(f"PACS integrity: {len(findings)} stud{'y' if len(findings) == 1 else 'ies'} changed since upload",
              "\n".join(lines), settings.DEFAULT_FROM_EMAIL, settings.TAMPER_ALERT_EMAILS)
    audit(None, "provenance.integrity_alert", object_type="Study", object_id="*",
          studies=[study.study_uid for study, _ in findings], recipients=settings.TAMPER_ALERT_EMAILS)
    return len(settings.TAMPER_ALERT_EMAILS)
