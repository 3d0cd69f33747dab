"""Writes: labels (versioned), queue leases, consensus/adjudication, queue builds, CSV import."""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotations import selectors
from annotations.models import Label, LabelRevision, QueueItem, RetrainRun
from annotations.strategies import Pool, get_strategy
from detection.ml.constants import CLASSES
from detection.models import ScoringJob
from detection.services import modality_not_scored
from portal.accounts.models import Role
from portal.accounts.services import audit, has_role
from portal.studies.models import Instance, Series
from portal.studies.selectors import visible_studies

log = logging.getLogger(__name__)

EDITABLE_FIELDS = ("label_class", "x", "y", "box", "comment", "slice_index", "sop_instance_uid")


def lease_seconds() -> int:
    return int(getattr(settings, "ANNOTATION_LEASE_SECONDS", 900))


def retrain_every_n_labels() -> int:
    return int(getattr(settings, "RETRAIN_EVERY_N_LABELS", 0))  # 0: only manual retraining


def _validate(series: Series, label_class: str, x: int, y: int, slice_index: int, box) -> None:
    if modality_not_scored(series.modality):  # retraining would read its pixels as Hounsfield units
        raise ValidationError({"series_uid": [
            f"TB/TM/FB/FM labels train the CT detector, and this series is {series.modality}: label CT series only "
            "(a radiograph's copy-move findings are reviewed instead)"]})
    if label_class not in CLASSES:
        raise ValidationError({"label_class": f"must be one of {', '.join(CLASSES)}"})
    if min(x, y, slice_index) < 0:
        raise ValidationError("slice_index, x and y must be >= 0")
    bad_box = box is not None and (
        len(box) != 4 or not all(isinstance(v, int | float) and math.isfinite(v) for v in box)
        or box[0] > box[2] or box[1] > box[3]
    )  # fmt: skip
    if bad_box:
        raise ValidationError({"box": "must be [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1, or null"})
    _validate_inside_image(series, x, y, slice_index, box)


def _validate_inside_image(series: Series, x: int, y: int, slice_index: int, box) -> None:
    """A label must point into the slice it names (exports and retraining read the image there). A series with
    no indexed instances yet has no geometry to check against."""
    slices = Instance.objects.filter(series=series)
    if not slices.exists():
        return
    geometry = slices.filter(slice_index=slice_index).values("rows", "columns").first()
    if geometry is None:
        raise ValidationError({"slice_index": f"slice {slice_index} is not in this series "
                                              f"({slices.count()} slices, 0-based)"})  # fmt: skip
    rows, columns = geometry["rows"], geometry["columns"]
    if rows and columns:
        if x >= columns or y >= rows:
            raise ValidationError(f"({x}, {y}) is outside the {columns}x{rows} image")
        if box is not None and (min(box) < 0 or box[2] > columns or box[3] > rows):
            raise ValidationError({"box": f"must lie inside the {columns}x{rows} image"})


def _snapshot(label: Label, *, action: str, actor: User | None, reason: str = "") -> LabelRevision:
    return LabelRevision.objects.create(
        label=label, version=label.version, action=action, label_class=label.label_class, x=label.x, y=label.y,
        slice_index=label.slice_index, box=label.box, comment=label.comment, is_deleted=label.is_deleted,
        reason=reason, actor=actor,
    )  # fmt: skip


def _sop_for(series: Series, slice_index: int) -> str:
    return (
        Instance.objects.filter(series=series, slice_index=slice_index).values_list("sop_instance_uid", flat=True)
        .first() or ""
    )  # fmt: skip


@transaction.atomic
def label_create(
    *, user: User, series: Series, slice_index: int, x: int, y: int, label_class: str,
    sop_instance_uid: str = "", box: list | None = None, comment: str = "", queue_item: QueueItem | None = None,
    action: str = LabelRevision.Action.CREATE,
) -> Label:  # fmt: skip
    """Create a label; when it answers a leased queue item, count it towards that item's consensus."""
    _validate(series, label_class, x, y, slice_index, box)
    if queue_item is None:
        queue_item = _held_item(user=user, series=series, slice_index=slice_index)
    if queue_item is not None:
        queue_item = QueueItem.objects.select_for_update().get(pk=queue_item.pk)
        if queue_item.labels.filter(annotator=user, is_deleted=False, is_adjudication=False).exists():
            raise ValidationError("you already labelled this queue item; labels must be independent")
        if queue_item.status != QueueItem.Status.OPEN:
            raise ValidationError(f"queue item {queue_item.pk} is {queue_item.status}, not open for labels")
    label = Label.objects.create(
        study=series.study, series=series, sop_instance_uid=sop_instance_uid or _sop_for(series, slice_index),
        slice_index=slice_index, x=x, y=y, box=box, label_class=label_class, annotator=user, comment=comment,
        queue_item=queue_item,
    )  # fmt: skip
    _snapshot(label, action=action, actor=user)
    audit(user, f"label.{action}", label, series=series.series_uid, label_class=label_class,
          queue_item=queue_item.pk if queue_item else None)  # fmt: skip
    if queue_item is not None:
        _settle(queue_item, user=user)
    _maybe_trigger_retrain()
    return label


def _held_item(*, user: User, series: Series, slice_index: int) -> QueueItem | None:
    """The item this user holds a live lease on for this slice: the front end posts labels without ids."""
    return (
        QueueItem.objects.filter(
            series=series, slice_index=slice_index, leased_to=user, lease_expires__gt=timezone.now(),
            status=QueueItem.Status.OPEN,
        ).first()
    )  # fmt: skip


def _independent_labels(item: QueueItem) -> list[Label]:
    return list(item.labels.filter(is_deleted=False, is_adjudication=False).order_by("created"))


def _settle(item: QueueItem, *, user: User | None) -> None:
    """Release the lease; once enough independent labels exist, close on agreement or ask an expert."""
    labels = _independent_labels(item)
    item.leased_to, item.lease_expires = None, None
    if len({lab.annotator_id for lab in labels}) >= item.required_labels:
        classes = {lab.label_class for lab in labels}
        if len(classes) == 1:
            item.status, item.consensus_class = QueueItem.Status.DONE, classes.pop()
        else:
            item.status = QueueItem.Status.ADJUDICATION
            audit(user, "queue.disagreement", item, classes=sorted(classes))
    item.save(update_fields=["leased_to", "lease_expires", "status", "consensus_class", "updated"])


def _can_edit(user: User, label: Label, reason: str) -> None:
    if label.annotator_id == user.pk:
        return
    if not has_role(user, Role.EXPERT, Role.ADMIN):
        raise PermissionDenied("only the author or an expert may change this label")
    if not reason.strip():
        raise ValidationError({"reason": "an expert relabelling someone else's label must give a reason"})


@transaction.atomic
def label_update(*, user: User, label: Label, reason: str = "", **changes) -> Label:
    """Change a label; the previous state stays in its revisions. Experts may relabel others' with a reason."""
    label = Label.objects.select_for_update().get(pk=label.pk)
    if label.is_deleted:
        raise ValidationError("this label was deleted")
    _can_edit(user, label, reason)
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(f"cannot change {', '.join(sorted(unknown))}")
    changed = {k: v for k, v in changes.items() if getattr(label, k) != v}
    if not changed:
        return label
    for key, value in changed.items():
        setattr(label, key, value)
    _validate(label.series, label.label_class, label.x, label.y, label.slice_index, label.box)
    label.version += 1
    label.save()
    action = LabelRevision.Action.UPDATE if label.annotator_id == user.pk else LabelRevision.Action.RELABEL
    _snapshot(label, action=action, actor=user, reason=reason)
    audit(user, f"label.{action}", label, changes={k: str(v) for k, v in changed.items()}, reason=reason)
    if label.queue_item_id and "label_class" in changed:
        _resettle_after_change(label.queue_item_id, user=user)
    return label


@transaction.atomic
def label_delete(*, user: User, label: Label, reason: str = "") -> Label:
    """Soft delete: the label disappears from lists and exports; its history stays."""
    label = Label.objects.select_for_update().get(pk=label.pk)
    if label.is_deleted:
        return label
    _can_edit(user, label, reason)
    return _set_deleted(label, deleted=True, user=user, reason=reason)


@transaction.atomic
def label_restore(*, user: User, label: Label, reason: str = "") -> Label:
    """Bring a deleted label back (the viewer's undo of a delete), as a new version; it counts for its queue
    item again unless its author has labelled that item since (labels on an item must be independent)."""
    label = Label.objects.select_for_update().get(pk=label.pk)
    _can_edit(user, label, reason)
    if not label.is_deleted:
        return label
    if label.queue_item_id and Label.objects.filter(
        queue_item_id=label.queue_item_id, annotator_id=label.annotator_id, is_deleted=False, is_adjudication=False
    ).exists():  # fmt: skip
        raise ValidationError("its author has labelled this queue item again since; labels must be independent")
    return _set_deleted(label, deleted=False, user=user, reason=reason)


def _set_deleted(label: Label, *, deleted: bool, user: User, reason: str) -> Label:
    """Delete or restore as a new version, with its revision and audit event; recount its queue item."""
    action = LabelRevision.Action.DELETE if deleted else LabelRevision.Action.RESTORE
    label.is_deleted = deleted
    label.version += 1
    label.save(update_fields=["is_deleted", "version", "updated"])
    _snapshot(label, action=action, actor=user, reason=reason)
    audit(user, f"label.{action}", label, reason=reason)
    if label.queue_item_id:
        _resettle_after_change(label.queue_item_id, user=user)
    return label


def _resettle_after_change(item_id: int, *, user: User) -> None:
    """A changed/deleted label can turn agreement into disagreement (or reopen the item)."""
    item = QueueItem.objects.select_for_update().get(pk=item_id)
    if item.labels.filter(is_adjudication=True, is_deleted=False).exists():
        return  # an expert's decision stands
    labels = _independent_labels(item)
    if len({lab.annotator_id for lab in labels}) < item.required_labels:
        item.status, item.consensus_class = QueueItem.Status.OPEN, ""
        item.save(update_fields=["status", "consensus_class", "updated"])
        return
    item.status = QueueItem.Status.OPEN  # recompute from scratch
    _settle(item, user=user)


@transaction.atomic
def adjudicate(*, expert: User, item: QueueItem, label_class: str, reason: str, comment: str = "") -> Label:
    """An expert settles a disputed item: their label becomes the item's consensus."""
    if not has_role(expert, Role.EXPERT, Role.ADMIN):
        raise PermissionDenied("only experts adjudicate")
    item = QueueItem.objects.select_for_update().get(pk=item.pk)
    if item.status != QueueItem.Status.ADJUDICATION:
        raise ValidationError(f"queue item {item.pk} is {item.status}, not awaiting adjudication")
    if not reason.strip():
        raise ValidationError({"reason": "give a reason for the decision"})
    _validate(item.series, label_class, item.x, item.y, item.slice_index, None)
    label = Label.objects.create(
        study=item.series.study, series=item.series, sop_instance_uid=item.sop_instance_uid,
        slice_index=item.slice_index, x=item.x, y=item.y, label_class=label_class, annotator=expert,
        comment=comment, queue_item=item, is_adjudication=True,
    )  # fmt: skip
    _snapshot(label, action=LabelRevision.Action.CREATE, actor=expert, reason=reason)
    item.status, item.consensus_class = QueueItem.Status.DONE, label_class
    item.save(update_fields=["status", "consensus_class", "updated"])
    audit(expert, "queue.adjudicate", item, label=label.pk, label_class=label_class, reason=reason)
    return label


# ---- leases -----------------------------------------------------------------------------------------------
def lease_next(*, user: User, seconds: int | None = None) -> QueueItem | None:
    """Give the user the highest-priority open item nobody else holds.

    Rows are locked with SELECT ... FOR UPDATE SKIP LOCKED, so two annotators asking at the same instant
    each get a different row instead of waiting for (and then double-booking) the same one. An expired
    lease counts as free. A user asking again while holding a live lease gets the same item back.
    """
    now = timezone.now()
    expires = now + timedelta(seconds=seconds or lease_seconds())
    with transaction.atomic():
        # One lease per annotator: serialise this user's own concurrent requests (double-clicks, two tabs)
        # on their user row; different annotators never wait on each other here.
        User.objects.select_for_update().filter(pk=user.pk).first()
        # Wait for (never skip) the held row: another annotator's SKIP LOCKED scan may lock it for an instant
        # while re-checking it, and skipping it then handed this user a second item (seen in CI). A held item
        # of a study the user no longer sees (withdrawn, assignment revoked) is not handed back.
        held = (
            QueueItem.objects.select_for_update(of=("self",))
            .filter(leased_to=user, lease_expires__gt=now, status=QueueItem.Status.OPEN,
                    series__study__in=visible_studies(user).values("pk")).first()
        )  # fmt: skip
        if held is not None:
            held.lease_expires = expires
            held.save(update_fields=["lease_expires", "updated"])
            return held
        item = (
            selectors.leasable_items(user, now).select_for_update(skip_locked=True, of=("self",))
            .order_by("-priority", "id").first()
        )  # fmt: skip
        if item is None:
            return None
        previous = item.leased_to_id
        item.leased_to, item.lease_expires = user, expires
        item.save(update_fields=["leased_to", "lease_expires", "updated"])
        audit(user, "queue.lease", item, expires=expires.isoformat(), reclaimed_from=previous)
    return item


@transaction.atomic
def lease_release(*, user: User, item: QueueItem) -> QueueItem:
    item = QueueItem.objects.select_for_update().get(pk=item.pk)
    if item.leased_to_id != user.pk:
        raise PermissionDenied("you do not hold this lease")
    item.leased_to, item.lease_expires = None, None
    item.save(update_fields=["leased_to", "lease_expires", "updated"])
    audit(user, "queue.release", item)
    return item


# ---- queue building ---------------------------------------------------------------------------------------
@dataclass
class Candidate:
    slice_index: int
    x: int
    y: int
    probs: dict[str, float]


def job_candidates(job: ScoringJob) -> list[Candidate]:
    return [
        Candidate(loc.slice_index, loc.x, loc.y, loc.probs())
        for loc in job.location_scores.all().order_by("slice_index", "y", "x")
    ]


def candidate_pool(
    job: ScoringJob, cands: list[Candidate], needs: frozenset[str], labelled: list[tuple[int, int, int]]
) -> Pool:
    """Stored probabilities suffice for entropy/margin/least-confidence/random; embeddings and MC samples
    come from re-running the scoring model's trunk on the candidate patches (series fetched from the PACS).
    ``labelled``: the series' labelled locations (slice, x, y), embedded as what is known already."""
    probs = np.array([[c.probs[k] for k in CLASSES] for c in cands], dtype=np.float64).reshape(-1, len(CLASSES))
    if not needs:
        return Pool(probs=probs)
    from annotations.features import MC_SAMPLES, detector_features
    from detection.ml.preprocessing import series_breaks, volume_from_datasets
    from detection.services import current_model_version, get_detector
    from portal.studies import dicomweb

    series = job.series
    datasets = dicomweb.retrieve_series(series.study.study_uid, series.series_uid)
    vol, _, order = volume_from_datasets(datasets)
    breaks = series_breaks(datasets, order)  # read across gaps as the scoring did
    detector = get_detector(job.model_version or current_model_version())
    locs = [(c.slice_index, c.x, c.y) for c in cands]
    feats = detector_features(detector, vol, locs, mc_samples=MC_SAMPLES if "mc" in needs else 0, breaks=breaks)
    known = [(z, x, y) for z, x, y in labelled if z < vol.shape[0]]
    labelled_emb = detector_features(detector, vol, known, mc_samples=0, breaks=breaks)["embeddings"] if known else None
    return Pool(probs=feats["probs"], mc_probs=feats["mc_probs"], embeddings=feats["embeddings"],
                labelled_embeddings=labelled_emb)  # fmt: skip


def strategy_needs(strat, n_labelled: int) -> frozenset[str]:
    """What the strategy will use at this many labels (typiclust_bald needs no MC samples before it switches)."""
    needs_at = getattr(strat, "needs_at", None)
    return needs_at(n_labelled) if needs_at else strat.needs


def default_strategy() -> str:
    # typiclust_bald: the best strategy measured in the benchmark (docs/active_learning.md, three simulated
    # draws); entropy, the usual default, was behind random there. It costs a PACS fetch and a trunk pass per
    # queue build; ACTIVE_LEARNING_STRATEGY=entropy ranks on stored scores only.
    return str(getattr(settings, "ACTIVE_LEARNING_STRATEGY", "typiclust_bald"))


def queue_build(
    *, job: ScoringJob, strategy: str | None = None, batch_size: int | None = None,
    required_labels: int | None = None, actor: User | None = None, pool: Pool | None = None,
) -> list[QueueItem]:  # fmt: skip
    """Rank the job's candidate locations and (re)fill the series' queue with the top ``batch_size``.

    Untouched open items of the series are retired first, so a rebuild after a new model replaces stale
    priorities; items somebody already labelled or holds a lease on are kept as they are.
    """
    name = strategy or default_strategy()
    strat = get_strategy(name)  # KeyError for an unknown name, before any work
    batch_size = batch_size or int(getattr(settings, "ACTIVE_LEARNING_BATCH", 20))
    required = required_labels or int(getattr(settings, "ANNOTATION_REQUIRED_LABELS", 1))
    cands = job_candidates(job)
    labelled = set(
        Label.objects.filter(series=job.series, is_deleted=False).values_list("slice_index", "x", "y")
    )
    if pool is None:
        # one embedding per labelled location (double reading labels one location twice)
        pool = candidate_pool(job, cands, strategy_needs(strat, len(labelled)), sorted(labelled))
    rng = np.random.default_rng(job.pk)
    # Select among unlabelled candidates only, and ask for exactly one batch: batch-mode strategies
    # (diverse_*, coreset) spread *k* picks apart, so k must be the batch an annotator will see, not every
    # candidate (that would turn a shortlist-then-diversify strategy into plain k-center over everything).
    open_idx = np.array(
        [i for i, c in enumerate(cands) if (c.slice_index, c.x, c.y) not in labelled], dtype=int
    )
    chosen, _ = strat.select(pool.subset(open_idx), min(batch_size, len(open_idx)), rng)
    # Query order is what matters to annotators; priority encodes it (first = highest).
    picked = [int(open_idx[i]) for i in chosen][:batch_size]
    now = timezone.now()
    sops = dict(Instance.objects.filter(series=job.series).values_list("slice_index", "sop_instance_uid"))
    with transaction.atomic():
        stale = QueueItem.objects.filter(series=job.series, status=QueueItem.Status.OPEN, labels__isnull=True).filter(
            Q(lease_expires__isnull=True) | Q(lease_expires__lte=now)
        )  # fmt: skip
        retired = QueueItem.objects.filter(pk__in=list(stale.values_list("pk", flat=True))).update(
            status=QueueItem.Status.RETIRED
        )
        items = QueueItem.objects.bulk_create([
            QueueItem(
                series=job.series, job=job, sop_instance_uid=sops.get(cands[i].slice_index, ""),
                slice_index=cands[i].slice_index, x=cands[i].x, y=cands[i].y, strategy=name,
                priority=float(len(picked) - rank), probs=cands[i].probs, required_labels=required,
            )
            for rank, i in enumerate(picked)
        ])  # fmt: skip
    audit(actor, "queue.build", job.series, strategy=name, items=len(items), retired=retired, job=job.pk)
    return items


# ---- CT-GAN CSV import --------------------------------------------------------------------------------------
def import_ctgan_csv(
    *, user: User, text: str, series_by_uuid: dict[str, Series] | None = None, default_series: Series | None = None
) -> list[Label]:
    """Rows ``type,uuid,slice,x,y``; uuid names the scan (a series UID in our exports, a scan id in CT-GAN's).

    CT-GAN's TB rows carry slice=x=y=0 (a scan-level "nothing here"); they import as such.
    """
    try:
        return _import_ctgan_rows(user, csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline="")),
                                  dict(series_by_uuid or {}), default_series)  # fmt: skip
    except csv.Error as exc:
        raise ValidationError(f"not a readable CSV table: {exc}") from exc


def _import_ctgan_rows(user: User, reader: csv.DictReader, series_by_uuid: dict[str, Series],
                       default_series: Series | None) -> list[Label]:  # fmt: skip
    needed = {"type", "uuid", "slice", "x", "y"}
    if not reader.fieldnames or not needed <= {f.strip() for f in reader.fieldnames}:
        raise ValidationError(f"CSV header must be type,uuid,slice,x,y (got {reader.fieldnames})")
    rows = []
    for n, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        uuid = row["uuid"]
        series = series_by_uuid.get(uuid)
        if series is None:
            series = Series.objects.filter(series_uid=uuid).select_related("study").first() or default_series
            if series is None:
                raise ValidationError(f"line {n}: no series for uuid {uuid!r}")
            series_by_uuid[uuid] = series
        if not visible_studies(user).filter(pk=series.study_id).exists():
            raise PermissionDenied(f"line {n}: you cannot see the study of series {series.series_uid}")
        try:
            rows.append((series, row["type"], int(row["slice"]), int(row["x"]), int(row["y"])))
        except ValueError as exc:
            raise ValidationError(f"line {n}: {exc}") from exc
    labels = []
    with transaction.atomic():  # all rows or none
        for n, (series, cls, z, x, y) in enumerate(rows, start=2):
            try:
                labels.append(label_create(user=user, series=series, slice_index=z, x=x, y=y, label_class=cls,
                                           comment="imported from CT-GAN CSV", action=LabelRevision.Action.IMPORT,
                                           queue_item=None))  # fmt: skip
            except ValidationError as exc:
                raise ValidationError(f"line {n}: {'; '.join(exc.messages)}") from exc
    return labels


# ---- retraining trigger --------------------------------------------------------------------------------------
def labels_since_last_retrain() -> int:
    last = RetrainRun.objects.exclude(status=RetrainRun.Status.FAILED).order_by("-created").first()
    qs = Label.objects.filter(is_deleted=False, study__withdrawn_at__isnull=True)
    if last is not None:
        qs = qs.filter(created__gt=last.created)
    return qs.count()


def _maybe_trigger_retrain() -> None:
    n = retrain_every_n_labels()
    if n <= 0 or labels_since_last_retrain() < n:
        return
    if RetrainRun.objects.filter(status__in=[RetrainRun.Status.QUEUED, RetrainRun.Status.RUNNING]).exists():
        return
    retrain_request(actor=None, trigger="threshold")


def retrain_request(*, actor: User | None, trigger: str = "manual") -> RetrainRun:
    """Record the run and send the task once the transaction commits (the worker must see the row)."""
    run = RetrainRun.objects.create(trigger=trigger, requested_by=actor)
    audit(actor, "model.retrain_request", run, trigger=trigger)

    def send() -> None:
        from annotations.tasks import retrain_task

        try:
            retrain_task.delay(run.pk)
        except Exception as exc:  # broker down: the run says why instead of vanishing
            RetrainRun.objects.filter(pk=run.pk).update(status=RetrainRun.Status.FAILED, error=f"queue: {exc}")

    transaction.on_commit(send)
    return run
