"""Reads with permissions applied: who may see which labels, queue items and exports."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from annotations.agreement import ItemLabels, annotator_tallies
from annotations.models import Label, LabelRevision, QueueItem
from portal.accounts.models import Role
from portal.accounts.services import has_role
from portal.studies.models import Study
from portal.studies.selectors import visible_studies

LABEL_READ_ROLES = (Role.CLINICIAN, Role.ANNOTATOR, Role.EXPERT, Role.ADMIN)  # insurers: nothing


def visible_labels(user: User) -> QuerySet[Label]:
    """Labels of studies the user can see (clinicians read their studies' labels; insurers see none)."""
    if not has_role(user, *LABEL_READ_ROLES):
        return Label.objects.none()
    return Label.objects.filter(is_deleted=False, study__in=visible_studies(user).values("pk")).select_related(
        "study", "series", "annotator"
    )


def deleted_labels(user: User) -> QuerySet[Label]:
    """Deleted labels of studies the user can see (to restore one)."""
    if not has_role(user, *LABEL_READ_ROLES):
        return Label.objects.none()
    return Label.objects.filter(is_deleted=True, study__in=visible_studies(user).values("pk"))


def label_list(user: User, *, series_uid: str = "", study_uid: str = "") -> QuerySet[Label]:
    qs = visible_labels(user)
    if series_uid:
        qs = qs.filter(series__series_uid=series_uid)
    if study_uid:
        qs = qs.filter(study__study_uid=study_uid)
    return qs.order_by("slice_index", "id")


def label_history(label: Label) -> QuerySet[LabelRevision]:
    return label.revisions.select_related("actor").order_by("version")


def leasable_items(user: User, now: datetime) -> QuerySet[QueueItem]:
    """Open items ``lease_next`` may give the user: on a study they can see, no live lease, not already
    labelled by them (an item that needs two labels needs two different annotators)."""
    return (
        QueueItem.objects.filter(status=QueueItem.Status.OPEN, series__study__in=visible_studies(user).values("pk"))
        .filter(Q(lease_expires__isnull=True) | Q(lease_expires__lte=now))
        .exclude(pk__in=_labelled_by(user))
    )  # fmt: skip


def _labelled_by(user: User) -> QuerySet[Label]:
    return Label.objects.filter(annotator=user, is_deleted=False, queue_item__isnull=False).values("queue_item_id")


def queue_summary(user: User, now: datetime) -> dict:
    """Where the review queue stands for this user: what "next" can give them, what they hold, what waits
    on others, and how far the labels are from the next automatic retraining."""
    from annotations.services import labels_since_last_retrain, retrain_every_n_labels

    open_items = queue_items(user, status=QueueItem.Status.OPEN)
    live = Q(lease_expires__gt=now)
    counts = {
        "available": leasable_items(user, now).count(),
        "held_by_others": open_items.filter(live).exclude(leased_to=user).exclude(pk__in=_labelled_by(user)).count(),
        "awaiting_other_annotators": open_items.filter(pk__in=_labelled_by(user)).count(),
        "adjudication": queue_items(user, status=QueueItem.Status.ADJUDICATION).count(),
        "done": queue_items(user, status=QueueItem.Status.DONE).count(),
    }
    retraining = {"every_n_labels": retrain_every_n_labels(), "labels_since_last": labels_since_last_retrain()}
    mine = annotator_tallies(agreement_items(user, read_by=user)).get(user.username, {})
    my_agreement = {"decided": mine.get("decided", 0), "agreed_with_final": mine.get("agreed_with_final", 0)}
    return {**counts, "held": open_items.filter(live, leased_to=user).first(),
            "my_labels": Label.objects.filter(annotator=user, is_deleted=False).count(), "retraining": retraining,
            "my_agreement": my_agreement}  # fmt: skip


def adjudication_queue(user: User) -> QuerySet[QueueItem]:
    return (
        QueueItem.objects.filter(status=QueueItem.Status.ADJUDICATION, series__study__in=visible_studies(user))
        .select_related("series__study").prefetch_related("labels__annotator").order_by("-priority", "id")
    )  # fmt: skip


def queue_items(user: User, *, status: str = "") -> QuerySet[QueueItem]:
    qs = QueueItem.objects.filter(series__study__in=visible_studies(user).values("pk")).select_related(
        "series__study", "leased_to"
    )
    return qs.filter(status=status) if status else qs.exclude(status=QueueItem.Status.RETIRED)


def agreement_items(user: User, *, since: datetime | None = None, read_by: User | None = None) -> list[ItemLabels]:
    """Visible queue items with independent labels (given since ``since``; on items ``read_by`` labelled),
    for ``agreement_report``."""
    items = queue_items(user)
    if read_by is not None:
        items = items.filter(pk__in=_labelled_by(read_by))
    labels = Label.objects.filter(queue_item__in=items.values("pk"), is_deleted=False, is_adjudication=False)
    if since is not None:
        labels = labels.filter(created__gte=since)
    by_item: dict[int, list[tuple[str, str]]] = {}
    for item_id, who, cls in labels.values_list("queue_item_id", "annotator__username", "label_class"):
        by_item.setdefault(item_id, []).append((who, cls))
    items = QueueItem.objects.filter(pk__in=by_item).values_list("pk", "status", "consensus_class", "probs")
    return [
        ItemLabels(item_id=pk, labels=tuple(by_item[pk]), model=max(probs, key=probs.get) if probs else "",
                   final=final if status == QueueItem.Status.DONE else "")
        for pk, status, final, probs in items
    ]  # fmt: skip


def export_ctgan_csv(study: Study) -> str:
    """CT-GAN layout ``type,uuid,slice,x,y``; uuid is the series UID so an import maps rows back exactly.

    Adjudicated items export the expert's decision only, not the disputed labels it settled.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["type", "uuid", "slice", "x", "y"])
    for label in _export_labels(study):
        writer.writerow([label.label_class, label.series.series_uid, label.slice_index, label.x, label.y])
    return out.getvalue()


def _export_labels(study: Study) -> list[Label]:
    labels = list(
        Label.objects.filter(study=study, is_deleted=False).select_related("series", "annotator", "queue_item")
        .order_by("series__series_uid", "slice_index", "id")
    )  # fmt: skip
    settled = {lab.queue_item_id for lab in labels if lab.is_adjudication}
    return [lab for lab in labels if lab.is_adjudication or lab.queue_item_id not in settled or not lab.queue_item_id]


def export_labels(study: Study) -> list[Label]:
    return _export_labels(study)
