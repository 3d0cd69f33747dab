from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    CLINICIAN = "clinician"
    ANNOTATOR = "annotator"
    EXPERT = "expert"  # an annotator who may adjudicate and relabel with a reason
    INSURER = "insurer"
    ADMIN = "admin"


class AuditEvent(models.Model):
    """Append-only record of every write and of reads that matter (who opened a study, downloaded a report):
    who did what to which object, and when."""

    created = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=128, db_index=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.actor_id} {self.action} {self.object_type}:{self.object_id}"
