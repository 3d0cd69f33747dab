"""Other studies that hold the same images. The ledger signs every image's pixel hash at upload, so a study
whose slices are pixel-identical to another's is a copy of it (a re-export, or the same scan reused under
another patient or claim), and the slices where the two differ are where one of them was changed: an
injected or removed tumour leaves the rest of the scan untouched."""

from __future__ import annotations

from collections import defaultdict
from itertools import groupby

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from portal.accounts.services import audit
from portal.claims import imaging
from portal.claims.models import LedgerEntry, ReuseAlert
from portal.claims.selectors import can_read_study_uid
from portal.studies import dicomweb
from portal.studies.models import Instance, Series, Study


def _latest_hashes(study_uid: str) -> dict[str, str]:
    """The study's SOP Instance UID -> pixel hash of its latest upload (the ledger keeps every version)."""
    latest: dict[str, str] = {}
    for sop, pixels in (LedgerEntry.objects.filter(study_uid=study_uid).exclude(pixel_sha256="")
                        .order_by("seq").values_list("sop_instance_uid", "pixel_sha256")):  # fmt: skip
        latest[sop] = pixels
    return latest


def _shared_images(study: Study) -> tuple[dict[str, str], dict[str, set[str]]]:
    """(this study's SOP Instance UID -> pixel hash of its latest upload, other study UID -> shared hashes)."""
    latest = _latest_hashes(study.study_uid)
    shared: dict[str, set[str]] = defaultdict(set)
    elsewhere = LedgerEntry.objects.filter(pixel_sha256__in=set(latest.values())).exclude(study_uid=study.study_uid)
    for other_uid, pixels in elsewhere.values_list("study_uid", "pixel_sha256"):
        shared[other_uid].add(pixels)
    return latest, shared


def study_copies(*, user: User, study: Study) -> list[dict]:
    """Studies the user may read that share images with ``study``, most shared first: how many of this
    study's images each holds pixel for pixel, and per series the slices that differ (index ranges)."""
    latest, shared = _shared_images(study)
    readable = [uid for uid in shared if can_read_study_uid(user, uid)]
    others = {s.study_uid: s for s in Study.objects.filter(study_uid__in=readable).select_related("patient")}
    slices = list(Instance.objects.filter(series__study=study, sop_instance_uid__in=latest)
                  .order_by("series__series_uid", "slice_index")
                  .values_list("series__series_uid", "slice_index", "sop_instance_uid"))  # fmt: skip
    copies = []  # not audited: it names only studies the user may read anyway, as the studies list does
    for uid, hashes in shared.items():
        other = others.get(uid)
        if other is None:
            continue  # not theirs to know about
        differing = [(series, index) for series, index, sop in slices if latest[sop] not in hashes]
        copies.append({
            "study_uid": uid, "patient_id": other.patient.patient_id, "study_date": other.study_date,
            "description": other.description,
            "shared_images": sum(latest[sop] in hashes for _, _, sop in slices), "images": len(slices),
            "differing": [{"series_uid": series, "slices": _ranges([i for _, i in group if i is not None])}
                          for series, group in groupby(differing, key=lambda pair: pair[0])],
        })  # fmt: skip
    copies.sort(key=lambda copy: (-copy["shared_images"], copy["study_uid"]))
    return copies


POSITION_MATCH_MM = 0.01  # a copy keeps the slice positions; a changed slice is paired with its place in the other


def slice_pairs(*, series: Series, other: Study) -> dict | None:
    """Each slice of ``series`` beside the image of the ``other`` study at the same place, for a side by side or
    difference view: pixel-identical images by their signed hashes, the others by slice position in the other
    study's series that shares most images with this one. None when no series of ``other`` shares any."""
    latest, theirs = _latest_hashes(series.study.study_uid), _latest_hashes(other.study_uid)
    mine = list(series.instances.order_by("slice_index").values_list("slice_index", "sop_instance_uid", "z"))
    hashes = {latest[sop] for _, sop, _ in mine if sop in latest}
    candidates = list(Instance.objects.filter(series__study=other).values_list("series__series_uid",
                                                                               "sop_instance_uid", "z"))
    shared_by_series: dict[str, int] = defaultdict(int)
    for other_series, sop, _ in candidates:
        shared_by_series[other_series] += theirs.get(sop) in hashes
    if not shared_by_series or max(shared_by_series.values()) == 0:
        return None
    other_series = max(sorted(shared_by_series), key=lambda uid: shared_by_series[uid])
    in_other = [(sop, z) for uid, sop, z in candidates if uid == other_series]
    by_hash = {theirs[sop]: sop for sop, _ in in_other if sop in theirs}
    pairs = []
    for index, sop, z in mine:
        match = by_hash.get(latest.get(sop, ""))
        identical = match is not None
        if match is None and z is not None:
            match = next((o for o, oz in in_other if oz is not None and abs(oz - z) <= POSITION_MATCH_MM), None)
        pairs.append({"slice_index": index, "sop_instance_uid": sop, "other_sop_instance_uid": match,
                      "identical": identical})  # fmt: skip
    return {"other_study_uid": other.study_uid, "other_series_uid": other_series, "pairs": pairs}


def most_changed_slice(series: Series, other: Study, limit: int = 12) -> dict | None:
    """Of the series' slices that differ from their place in ``other`` (the first ``limit``), the one with the
    most pixels changed by imaging.DIFFERENCE_HU or more, both images fetched from the PACS: {"slice_index",
    "changed", "mine", "theirs" (datasets), "delta" (this one's HU minus the other's)}. None when none differs."""
    paired = slice_pairs(series=series, other=other)
    if paired is None:
        return None
    best = None
    for pair in [p for p in paired["pairs"] if not p["identical"] and p["other_sop_instance_uid"]][:limit]:
        mine = dicomweb.retrieve_instance(series.study.study_uid, series.series_uid, pair["sop_instance_uid"])
        theirs = dicomweb.retrieve_instance(other.study_uid, paired["other_series_uid"],
                                            pair["other_sop_instance_uid"])  # fmt: skip
        a, b = imaging.hu(mine), imaging.hu(theirs)
        if a.shape != b.shape:
            continue
        changed = imaging.changed_pixels(delta := a - b)
        if changed and (best is None or changed > best["changed"]):
            best = {"slice_index": pair["slice_index"], "changed": changed, "mine": mine, "theirs": theirs,
                    "delta": delta}  # fmt: skip
    return best


def _ranges(indices: list[int]) -> list[list[int]]:
    """[3, 4, 5, 9] -> [[3, 5], [9, 9]] (inclusive)."""
    out: list[list[int]] = []
    for index in sorted(indices):
        if out and index == out[-1][1] + 1:
            out[-1][1] = index
        else:
            out.append([index, index])
    return out


REUSE_MIN_IMAGES = 3  # fewer shared images (a blank slice, a scout) say little; a shorter study needs all of them


def reused_by_other_patients(study: Study) -> list[tuple[Study, int]]:
    """(other patient's study, images of this study it holds pixel for pixel): the same scan filed under
    another patient, which a re-export of the patient's own study is not."""
    latest, shared = _shared_images(study)
    enough = min(REUSE_MIN_IMAGES, len(set(latest.values())))
    counts = {uid: sum(pixels in hashes for pixels in latest.values()) for uid, hashes in shared.items()}
    others = Study.objects.filter(study_uid__in=[uid for uid, n in counts.items() if n and n >= enough])
    return [(other, counts[other.study_uid]) for other in others.exclude(patient_id=study.patient_id).order_by("pk")]


def send_reuse_alert(study_id: int) -> int:
    """Email TAMPER_ALERT_EMAILS and the uploader when a study's images are another patient's, once per pair
    of studies, whichever is checked first and however many workers check at once; links only, no patient.
    Returns the number of recipients (0: nothing new, or nobody to tell)."""
    study = Study.objects.select_related("uploaded_by").get(pk=study_id)
    uploader = study.uploaded_by.email if study.uploaded_by and study.uploaded_by.email else ""
    to = list(dict.fromkeys(([uploader] if uploader else []) + settings.TAMPER_ALERT_EMAILS))
    if not to:
        return 0
    uid = study.study_uid
    with transaction.atomic():  # a failed send takes the pairs' claims back, so the retry sends
        new = [(other, n) for other, n in reused_by_other_patients(study) if _claim_pair(uid, other.study_uid)]
        if not new:
            return 0
        images = Instance.objects.filter(series__study=study).count()
        lines = ["Images of a study on the tamper detection portal are pixel for pixel those of another patient's "
                 "study (by the hashes signed at upload): the same scan filed under two patients.", "",
                 f"Study: {settings.PORTAL_URL}/studies/{study.study_uid}"]
        lines += [f"- {n} of its {images} images are in {settings.PORTAL_URL}/studies/{other.study_uid}"
                  for other, n in new]
        lines += ["", "Open the studies (sign-in required); 'Same images in other studies' names the slices that "
                  "differ. This message names no patient."]
        send_mail("Images reused under another patient on the tamper detection portal", "\n".join(lines),
                  settings.DEFAULT_FROM_EMAIL, to)
        for other, n in new:
            audit(None, "study.image_reuse", study, study_uid=uid, other_study=other.study_uid, shared_images=n,
                  recipients=to)  # fmt: skip
    return len(to)


def _claim_pair(uid: str, other_uid: str) -> bool:
    """True when this check is the one to report the pair: its row is new. A concurrent check's uncommitted row
    makes the insert wait until that check commits (then False) or rolls back (then True)."""
    first, second = sorted((uid, other_uid))
    try:
        with transaction.atomic():
            ReuseAlert.objects.create(first_study_uid=first, second_study_uid=second)
    except IntegrityError:
        return False
    return True
