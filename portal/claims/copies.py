"""Other studies that hold the same images. The ledger signs every image's pixel hash at upload, so a study
whose slices are pixel-identical to another's is a copy of it (a re-export, or the same scan reused under
another patient or claim), and the slices where the two differ are where one of them was changed: an
injected or removed tumour leaves the rest of the scan untouched."""

from __future__ import annotations

from collections import defaultdict
from itertools import groupby

from django.contrib.auth.models import User

from portal.claims.models import LedgerEntry
from portal.claims.selectors import can_read_study_uid
from portal.studies.models import Instance, Study


def study_copies(*, user: User, study: Study) -> list[dict]:
    """Studies the user may read that share images with ``study``, most shared first: how many of this
    study's images each holds pixel for pixel, and per series the slices that differ (index ranges)."""
    latest: dict[str, str] = {}  # this study's images: SOP Instance UID -> pixel hash of its latest upload
    for sop, pixels in (LedgerEntry.objects.filter(study_uid=study.study_uid).exclude(pixel_sha256="")
                        .order_by("seq").values_list("sop_instance_uid", "pixel_sha256")):  # fmt: skip
        latest[sop] = pixels
    shared: dict[str, set[str]] = defaultdict(set)  # other study UID -> the hashes it shares with this one
    elsewhere = LedgerEntry.objects.filter(pixel_sha256__in=set(latest.values())).exclude(study_uid=study.study_uid)
    for other_uid, pixels in elsewhere.values_list("study_uid", "pixel_sha256"):
        shared[other_uid].add(pixels)
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


def _ranges(indices: list[int]) -> list[list[int]]:
    """[3, 4, 5, 9] -> [[3, 5], [9, 9]] (inclusive)."""
    out: list[list[int]] = []
    for index in sorted(indices):
        if out and index == out[-1][1] + 1:
            out[-1][1] = index
        else:
            out.append([index, index])
    return out
