import uuid

from django.conf import settings
from django.db import models

from detection.ml.geometry import SliceGap, slice_gaps


class Patient(models.Model):
    patient_id = models.CharField(max_length=64, unique=True)
    patient_name = models.CharField(max_length=256, blank=True)
    sex = models.CharField(max_length=16, blank=True)
    birth_date = models.CharField(max_length=8, blank=True)  # DICOM DA, often blank after de-identification

    def __str__(self) -> str:
        return self.patient_id


class StudyQuerySet(models.QuerySet):
    def current(self) -> "StudyQuerySet":
        return self.filter(withdrawn_at__isnull=True)

    def withdrawn(self) -> "StudyQuerySet":
        return self.filter(withdrawn_at__isnull=False)


class Study(models.Model):
    study_uid = models.CharField(max_length=64, unique=True)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    study_date = models.DateField(null=True, blank=True, db_index=True)
    description = models.CharField(max_length=256, blank=True)
    accession_number = models.CharField(max_length=64, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="uploaded_studies"
    )
    created = models.DateTimeField(auto_now_add=True)
    # Denormalised from the latest finished scoring jobs so the study list can filter on them.
    verdict = models.CharField(max_length=2, blank=True, db_index=True)
    verdict_score = models.FloatField(null=True, blank=True)
    model_version = models.CharField(max_length=128, blank=True)
    # Images of its radiograph series with a region copied inside, from each series' latest finished copy-move
    # check (detection.radiographs), less those an expert dismissed; null while no check has finished.
    copy_move_images = models.IntegerField(null=True, blank=True, db_index=True)
    copy_move_dismissed = models.IntegerField(default=0)  # found, but an expert said it is no copy (left out above)
    copy_move_confirmed = models.IntegerField(default=0)  # of copy_move_images, those an expert confirmed
    # Withdrawn (uploaded in error, consent withdrawn): hidden from everyone but admins, out of the queues and
    # training; its images stay in the PACS and the ledger (nothing is deleted), and an admin can restore it.
    withdrawn_at = models.DateTimeField(null=True, blank=True, db_index=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    withdrawn_reason = models.TextField(blank=True)

    objects = StudyQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.study_uid


class StudyAccess(models.Model):
    """Who besides the uploader may see a study: a clinician it was shared with,
    an annotator it was assigned to, an insurer it was shared with for a claim."""

    class Kind(models.TextChoices):
        SHARE = "share"
        ASSIGN = "assign"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="access")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="study_access")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SHARE)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "user"], name="unique_study_access")]


class Series(models.Model):
    series_uid = models.CharField(max_length=64, unique=True)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    modality = models.CharField(max_length=16, blank=True, db_index=True)
    description = models.CharField(max_length=256, blank=True)
    series_number = models.IntegerField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "series"
        ordering = ["series_number", "series_uid"]

    def __str__(self) -> str:
        return self.series_uid

    def slice_gaps(self) -> tuple[float | None, list[SliceGap]]:
        """(usual step in mm, gaps) of the slice positions: slices are missing in each gap."""
        return slice_gaps([instance.z for instance in self.instances.all()])  # in slice order (Instance.Meta)


class Instance(models.Model):
    sop_instance_uid = models.CharField(max_length=64, unique=True)
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_class_uid = models.CharField(max_length=64, blank=True)
    instance_number = models.IntegerField(null=True, blank=True)
    # Position along the slice normal (mm); slice_index is the 0-based rank by it, recomputed per series.
    z = models.FloatField(null=True, blank=True)
    slice_index = models.IntegerField(null=True, blank=True, db_index=True)
    rows = models.IntegerField(null=True, blank=True)
    columns = models.IntegerField(null=True, blank=True)
    pixel_spacing = models.JSONField(null=True, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64, blank=True)
    file_size = models.BigIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slice_index", "instance_number"]

    def __str__(self) -> str:
        return self.sop_instance_uid


class UploadBatch(models.Model):
    """Files of one upload request, staged on disk until the PACS confirms them."""

    class Status(models.TextChoices):
        STAGED = "staged"  # waiting for the PACS (retrying)
        STORED = "stored"
        FAILED = "failed"  # the PACS refused every instance or retries ran out; files kept for inspection

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.STAGED, db_index=True)
    files_received = models.IntegerField(default=0)
    instances_staged = models.IntegerField(default=0)
    instances_stored = models.IntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # [{file, reason}] for files that were not DICOM/valid
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)
    study_uids = models.JSONField(default=list, blank=True)  # the studies it added images to

    class Meta:
        ordering = ["-created"]

    @property
    def staging_dir(self):
        return settings.STAGING_DIR / str(self.id)
