"""Expert labels (versioned, soft-deleted), the active-learning queue with leases, and expert reviews of
copy-move findings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

from detection.ml.constants import CLASSES

if TYPE_CHECKING:
    from detection.models import CopyMoveCheck

LABEL_CHOICES = [(c, c) for c in CLASSES]


class QueueItem(models.Model):
    """A candidate location (slice + x/y) the current model is unsure about, waiting for labels."""

    class Status(models.TextChoices):
        OPEN = "open"  # needs (more) labels; leasable when no live lease
        ADJUDICATION = "adjudication"  # independent labels disagree: an expert decides
        DONE = "done"  # consensus reached or adjudicated
        RETIRED = "retired"  # superseded by a queue rebuild before anyone labelled it

    series = models.ForeignKey("studies.Series", on_delete=models.CASCADE, related_name="queue_items")
    job = models.ForeignKey("detection.ScoringJob", null=True, blank=True, on_delete=models.SET_NULL)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    slice_index = models.IntegerField()
    x = models.IntegerField()
    y = models.IntegerField()
    strategy = models.CharField(max_length=32)
    priority = models.FloatField(db_index=True)  # higher first: the strategy's rank turned into a score
    probs = models.JSONField(default=dict, blank=True)
    required_labels = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    leased_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lease_expires = models.DateTimeField(null=True, blank=True, db_index=True)
    consensus_class = models.CharField(max_length=2, choices=LABEL_CHOICES, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "id"]
        indexes = [models.Index(fields=["status", "-priority"])]

    def __str__(self) -> str:
        return f"{self.series_id}@{self.slice_index}:{self.x},{self.y} ({self.status})"


class Label(models.Model):
    """Current state of one label; every change also appends a LabelRevision (nothing is overwritten)."""

    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="labels")
    series = models.ForeignKey("studies.Series", on_delete=models.CASCADE, related_name="labels")
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    slice_index = models.IntegerField()
    x = models.IntegerField()
    y = models.IntegerField()
    box = models.JSONField(null=True, blank=True)  # [x0, y0, x1, y1] native pixels
    label_class = models.CharField(max_length=2, choices=LABEL_CHOICES)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="labels")
    comment = models.TextField(blank=True)
    queue_item = models.ForeignKey(
        QueueItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="labels"
    )
    is_adjudication = models.BooleanField(default=False)  # an expert's decision on a disputed item
    version = models.PositiveIntegerField(default=1)
    is_deleted = models.BooleanField(default=False, db_index=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slice_index", "id"]
        indexes = [models.Index(fields=["series", "slice_index"])]

    def __str__(self) -> str:
        return f"{self.label_class} {self.series_id}@{self.slice_index}:{self.x},{self.y} v{self.version}"


class LabelRevision(models.Model):
    """Append-only snapshot of a label after each change (create, update, relabel, delete)."""

    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        RELABEL = "relabel"  # an expert changed someone else's label, with a reason
        DELETE = "delete"
        RESTORE = "restore"  # a deleted label brought back (the viewer's undo)
        IMPORT = "import"

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    action = models.CharField(max_length=16, choices=Action.choices)
    label_class = models.CharField(max_length=2, choices=LABEL_CHOICES)
    x = models.IntegerField()
    y = models.IntegerField()
    slice_index = models.IntegerField()
    box = models.JSONField(null=True, blank=True)
    comment = models.TextField(blank=True)
    is_deleted = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["label_id", "version"]
        constraints = [models.UniqueConstraint(fields=["label", "version"], name="unique_label_version")]


class RetrainRun(models.Model):
    """One retrain -> evaluate -> promote attempt, kept for the admin and the API."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PROMOTED = "promoted"
        REJECTED = "rejected"
        FAILED = "failed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    trigger = models.CharField(max_length=16, default="manual")  # manual | threshold
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    n_labels = models.IntegerField(default=0)
    snapshot = models.JSONField(default=list, blank=True)  # label ids + versions used for training
    base_version = models.ForeignKey(
        "detection.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    candidate_version = models.ForeignKey(
        "detection.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]


class Measurement(models.Model):
    """A distance drawn in the viewer on one slice, kept with the study (not a label: it says how big, not what).
    Points are native pixels (x = column, y = row) like labels; the length is computed by the portal from the
    pixel spacing indexed at upload, so every reader and the report read the same figure."""

    series = models.ForeignKey("studies.Series", on_delete=models.CASCADE, related_name="measurements")
    sop_instance_uid = models.CharField(max_length=64)
    slice_index = models.IntegerField()
    points = models.JSONField()  # [[x0, y0], [x1, y1]], fractional native pixels
    length_mm = models.FloatField(null=True, blank=True)  # null: the image has no pixel spacing
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="measurements")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slice_index", "id"]

    def __str__(self) -> str:
        return f"{self.series_id}@{self.slice_index}: {self.length_mm} mm"


class CopyMoveReview(models.Model):
    """An expert's word on an image the copy-move check found a copy in: a copy indeed, or not one (two ribs
    alike, say). Appended, never changed: the latest per image counts, also for later checks of the same image,
    and a dismissed image no longer makes the study's verdict."""

    class Decision(models.TextChoices):
        CONFIRMED = "confirmed"
        DISMISSED = "dismissed"

    series = models.ForeignKey("studies.Series", on_delete=models.CASCADE, related_name="copy_move_reviews")
    sop_instance_uid = models.CharField(max_length=64)
    decision = models.CharField(max_length=16, choices=Decision.choices)
    reason = models.TextField(blank=True)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["series", "sop_instance_uid"])]

    def __str__(self) -> str:
        return f"{self.decision} {self.series_id}/{self.sop_instance_uid}"

    @classmethod
    def of_found(cls, checks: list[CopyMoveCheck]) -> list[tuple[CopyMoveCheck, dict, CopyMoveReview | None]]:
        """(check, image, its latest review or None) for each image the copy-move checks found a copy in, in
        their order (one query for the reviews)."""
        latest: dict[tuple[int, str], CopyMoveReview] = {}
        for review in cls.objects.filter(series__in=[c.series_id for c in checks]).select_related("reviewer"):
            latest.setdefault((review.series_id, review.sop_instance_uid), review)  # newest first
        return [(check, image, latest.get((check.series_id, image["sop_instance_uid"])))
                for check in checks for image in check.found]
