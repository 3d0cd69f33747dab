from django.db import models

from detection.ml.geometry import edge_slices

CLASS_FIELDS = {"TB": "p_tb", "TM": "p_tm", "FB": "p_fb", "FM": "p_fm"}


class ModelVersion(models.Model):
    """A detector artefact. Only one is ACTIVE; scoring always records which version produced a score."""

    class Status(models.TextChoices):
        UNTRAINED = "untrained"  # random weights: scores mean nothing, the API says so
        CANDIDATE = "candidate"
        ACTIVE = "active"
        REJECTED = "rejected"  # failed the promotion gate
        RETIRED = "retired"

    name = models.CharField(max_length=128, unique=True)
    arch = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    trained = models.BooleanField(default=False)
    artifact_path = models.CharField(max_length=512, blank=True)  # blank: the package's shipped default
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class ScoringJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    series = models.ForeignKey("studies.Series", on_delete=models.CASCADE, related_name="scoring_jobs")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error = models.TextField(blank=True)
    attempts = models.IntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    verdict = models.CharField(max_length=2, blank=True)
    verdict_score = models.FloatField(null=True, blank=True)
    # The model's location threshold on P(FB)+P(FM), calibrated for a whole series, and how many
    # locations reached it: a location below it is not a finding, however high its score looks.
    flag_threshold = models.FloatField(null=True, blank=True)
    flagged_locations = models.IntegerField(null=True, blank=True)
    # The threshold of the slices that lack a neighbour, when higher (detection.ml.scoring), and which those
    # were: the first, the last, and both sides of each gap in the positions (null: scored before gaps
    # counted, so the first and last only).
    edge_flag_threshold = models.FloatField(null=True, blank=True)
    edge_slices = models.JSONField(null=True, blank=True)
    # Locations the detector scored (it scores in and around the lungs only). 0: nothing to score, so the
    # job has no verdict; null: scored before this was recorded.
    scored_locations = models.IntegerField(null=True, blank=True)
    heatmap_path = models.CharField(max_length=512, blank=True)
    # Sent to the bulk queue (a re-score of many series); a person asking for it sooner moves it back.
    bulk = models.BooleanField(default=False)
    duration_s = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def edge_slice_indices(self, n_slices: int) -> list[int]:
        """The slices scored with the edge threshold."""
        return list(self.edge_slices) if self.edge_slices is not None else edge_slices(n_slices)

    def threshold_at(self, slice_index: int, n_slices: int) -> float | None:
        """A location's flag threshold on this slice (the edge one beside a missing neighbour, when higher)."""
        edge = self.edge_flag_threshold is not None and slice_index in self.edge_slice_indices(n_slices)
        return self.edge_flag_threshold if edge else self.flag_threshold


class ClassProbabilities(models.Model):
    """TB/TM/FB/FM probabilities and the tamper score (P(FB) + P(FM)) of one scored unit."""

    p_tb = models.FloatField()
    p_tm = models.FloatField()
    p_fb = models.FloatField()
    p_fm = models.FloatField()
    tamper = models.FloatField(db_index=True)

    class Meta:
        abstract = True

    def probs(self) -> dict[str, float]:
        return {cls: getattr(self, field) for cls, field in CLASS_FIELDS.items()}


class SliceScore(ClassProbabilities):
    job = models.ForeignKey(ScoringJob, on_delete=models.CASCADE, related_name="slice_scores")
    slice_index = models.IntegerField()
    sop_instance_uid = models.CharField(max_length=64)

    class Meta:
        ordering = ["slice_index"]
        constraints = [models.UniqueConstraint(fields=["job", "slice_index"], name="unique_slice_score")]


class LocationScore(ClassProbabilities):
    """A scored patch centre (x = column, y = row in native slice pixels)."""

    job = models.ForeignKey(ScoringJob, on_delete=models.CASCADE, related_name="location_scores")
    slice_index = models.IntegerField()
    x = models.IntegerField()
    y = models.IntegerField()

    class Meta:
        ordering = ["-tamper"]


class CopyMoveCheck(models.Model):
    """A projection radiograph series (X-ray, mammography) checked for regions cloned inside its images
    (detection.ml.radiograph): the CT detector cannot read them. One per upload that added images."""

    Status = ScoringJob.Status

    series = models.ForeignKey("studies.Series", on_delete=models.CASCADE, related_name="copy_move_checks")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    images_checked = models.IntegerField(default=0)
    # [{slice_index, sop_instance_uid, regions: [{shift, first, second, blocks}]}]; boxes x, y, w, h in pixels
    found = models.JSONField(default=list, blank=True)
    duration_s = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
