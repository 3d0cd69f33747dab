"""Copy-move checks of uploaded projection radiographs: queued after each upload that added images to such a
series, run by a worker (thin task in detection.tasks), read back with the series."""

import logging
import time
from collections import Counter

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from annotations.models import CopyMoveReview
from detection.ml.radiograph import PROJECTION_MODALITIES, check_images
from detection.models import CopyMoveCheck
from portal.celery import delay_after_commit
from portal.studies import dicomweb
from portal.studies.models import Series, Study

log = logging.getLogger(__name__)


def is_projection(series: Series) -> bool:
    return series.modality.upper() in PROJECTION_MODALITIES


def enqueue_copy_move_check(series: Series) -> CopyMoveCheck | None:
    """Queue a check of the whole series (one waiting check serves every upload request of it)."""
    if not is_projection(series):
        return None
    if waiting := series.copy_move_checks.filter(status=CopyMoveCheck.Status.QUEUED).first():
        return waiting
    check = CopyMoveCheck.objects.create(series=series)
    from detection.tasks import copy_move_check_task

    delay_after_commit(copy_move_check_task, check.pk)
    return check


def run_copy_move_check(*, check_id: int) -> CopyMoveCheck:
    """Fetch the series' indexed images from the PACS and look for regions cloned inside each. Raises
    PacsUnavailable with the check queued again (the task retries); any other failure is recorded."""
    with transaction.atomic():
        check = CopyMoveCheck.objects.select_for_update().select_related("series__study").get(pk=check_id)
        if check.status in (CopyMoveCheck.Status.DONE, CopyMoveCheck.Status.FAILED):
            return check  # a redelivered message
        check.status = CopyMoveCheck.Status.RUNNING
        check.save(update_fields=["status"])
    series, started = check.series, time.perf_counter()
    slice_of = dict(series.instances.values_list("sop_instance_uid", "slice_index"))
    try:
        datasets = dicomweb.retrieve_series(series.study.study_uid, series.series_uid)
        indexed = sorted(((slice_of[str(ds.SOPInstanceUID)], ds) for ds in datasets
                          if str(ds.SOPInstanceUID) in slice_of), key=lambda pair: pair[0])
        check.images_checked, check.found = check_images(indexed)
        check.status = CopyMoveCheck.Status.DONE
    except dicomweb.PacsUnavailable:
        CopyMoveCheck.objects.filter(pk=check.pk).update(status=CopyMoveCheck.Status.QUEUED)
        raise
    except Exception as exc:  # an image that cannot be decoded, a PACS that refuses: said with the series
        log.exception("copy-move check %s failed", check.pk)
        check.status, check.error = CopyMoveCheck.Status.FAILED, f"{type(exc).__name__}: {exc}"
    check.finished, check.duration_s = timezone.now(), time.perf_counter() - started
    check.save()
    if check.status == CopyMoveCheck.Status.DONE:
        update_study_copy_move(series.study)
        if is_new_copy_move(check):  # an alert that cannot be sent must not fail the check
            from detection.tasks import copy_move_alert_task

            delay_after_commit(copy_move_alert_task, check.pk)
    return check


def latest_done_checks(studies: Study | QuerySet[Study]) -> list[CopyMoveCheck]:
    """The latest finished check of each radiograph series of a study, or of several (in one query)."""
    of = {"series__study": studies} if isinstance(studies, Study) else {"series__study__in": studies}
    latest: dict[int, CopyMoveCheck] = {}
    done = CopyMoveCheck.objects.filter(**of, status=CopyMoveCheck.Status.DONE).select_related("series__study")
    for check in done.order_by("-created", "-pk"):
        latest.setdefault(check.series_id, check)
    return list(latest.values())


def update_study_copy_move(study: Study) -> int | None:
    """Study.copy_move_images: the images found with a copy in its series' latest finished checks (the study
    list filters and sorts on it), less those whose latest expert review dismissed the copy (counted in
    copy_move_dismissed; those confirmed in copy_move_confirmed); null while none has finished. Returns it."""
    checks = latest_done_checks(study)
    found = CopyMoveReview.of_found(checks)
    decided = Counter(review.decision for _, _, review in found if review)
    dismissed = decided[CopyMoveReview.Decision.DISMISSED]
    images = len(found) - dismissed if checks else None
    Study.objects.filter(pk=study.pk).update(copy_move_images=images, copy_move_dismissed=dismissed,
                                             copy_move_confirmed=decided[CopyMoveReview.Decision.CONFIRMED])
    return images


def is_new_copy_move(check: CopyMoveCheck) -> bool:
    """A copy found where the series' previous finished check found none (a re-check that agrees stays quiet)."""
    if not check.found:
        return False
    previous = (CopyMoveCheck.objects.filter(series=check.series_id, status=CopyMoveCheck.Status.DONE)
                .exclude(pk=check.pk).order_by("-created").first())  # fmt: skip
    return previous is None or not previous.found


def latest_check(series: Series) -> CopyMoveCheck | None:
    return series.copy_move_checks.first()
