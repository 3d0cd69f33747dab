"""Provenance ledger (append-only, hash-chained, Ed25519-signed), insurer claims and encrypted shares."""

import uuid

from django.conf import settings
from django.db import models

GENESIS_HASH = "0" * 64


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete a ledger entry through the ORM."""


class LedgerEntry(models.Model):
    """One signed provenance record per stored instance version.

    entry_hash = SHA-256 of the canonical JSON payload (which contains prev_hash), so editing or deleting any
    entry breaks the chain from there on; signature = Ed25519 over the same payload by key `key_id`.
    """

    seq = models.PositiveBigIntegerField(unique=True)
    recorded_at = models.DateTimeField()
    study_uid = models.CharField(max_length=64, db_index=True)
    series_uid = models.CharField(max_length=64)
    sop_instance_uid = models.CharField(max_length=64, db_index=True)
    pixel_sha256 = models.CharField(max_length=64, db_index=True)
    file_sha256 = models.CharField(max_length=64)
    render_sha256 = models.CharField(max_length=64, db_index=True)  # lung-window 8-bit export, see imaging
    pixel_shape = models.JSONField()
    pixel_dtype = models.CharField(max_length=16)
    transfer_syntax_uid = models.CharField(max_length=64, blank=True)
    key_id = models.CharField(max_length=32)
    prev_hash = models.CharField(max_length=64, unique=True)
    entry_hash = models.CharField(max_length=64, unique=True)
    signature = models.CharField(max_length=128)  # hex Ed25519 signature (64 bytes)

    class Meta:
        ordering = ["seq"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"#{self.seq} {self.sop_instance_uid}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("ledger entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("ledger entries are append-only")


class Claim(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        CHECKED = "checked"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    insurer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="claims")
    reference = models.CharField(max_length=128)  # the insurer's own claim number
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    studies = models.ManyToManyField("studies.Study", blank=True, related_name="claims")

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.reference


class ClaimImage(models.Model):
    class Kind(models.TextChoices):
        DICOM = "dicom"
        PNG = "png"
        JPEG = "jpeg"
        STUDY_INSTANCE = "study_instance"  # a slice of a referenced study, checked as held by the PACS

    class Provenance(models.TextChoices):
        PENDING = "pending"
        EXACT = "exact"  # bit-identical pixels to a signed original
        CONSISTENT = "consistent"  # JPEG: equal to a signed original within lossy-compression tolerance
        MODIFIED = "modified"  # an original exists and the pixels differ
        UNKNOWN = "unknown"  # no signed original found

    class Status(models.TextChoices):
        PENDING = "pending"
        AUTHENTIC = "authentic"
        TAMPERED = "tampered"
        SUSPICIOUS = "suspicious"
        UNVERIFIED = "unverified"

    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="images")
    position = models.PositiveIntegerField()  # upload order, the report's ordering
    kind = models.CharField(max_length=16, choices=Kind.choices)
    original_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64)
    file_path = models.CharField(max_length=512)
    created = models.DateTimeField(auto_now_add=True)
    provenance = models.CharField(max_length=16, choices=Provenance.choices, default=Provenance.PENDING)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    result = models.JSONField(default=dict, blank=True)  # full analysis: matches, boxes, scores, reasons

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["claim", "position"], name="unique_claim_image_position")]

    def __str__(self) -> str:
        return f"{self.claim_id}/{self.position} {self.original_name}"


class EncryptedShare(models.Model):
    """An AES-256-GCM archive handed to someone outside the portal. Only the key's SHA-256 is kept."""

    class Kind(models.TextChoices):
        STUDY = "study"
        CLAIM = "claim"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    study = models.ForeignKey("studies.Study", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    claim = models.ForeignKey(Claim, null=True, blank=True, on_delete=models.SET_NULL, related_name="shares")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    key_sha256 = models.CharField(max_length=64)
    header = models.JSONField()
    archive_path = models.CharField(max_length=512)
    archive_size = models.BigIntegerField()
    recipient = models.CharField(max_length=255, blank=True)
    # Revoked: the server's copy of the archive is deleted and the portal no longer opens it (a copy already
    # handed out can still be decrypted offline by whoever holds the key).
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-created"]


class ReuseAlert(models.Model):
    """A pair of studies (either order) whose shared images were reported as reused under another patient.
    The unique pair is what makes the alert go out once: of two workers checking the pair at the same moment,
    the second's insert waits for the first's transaction and then fails, so only the first sends."""

    first_study_uid = models.CharField(max_length=64)  # the lesser UID of the pair
    second_study_uid = models.CharField(max_length=64)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["first_study_uid", "second_study_uid"],
                                               name="reuse_alert_once_per_pair")]

    def __str__(self) -> str:
        return f"{self.first_study_uid} ~ {self.second_study_uid}"
