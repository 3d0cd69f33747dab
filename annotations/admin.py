from django.contrib import admin

from annotations.models import CopyMoveReview, Label, LabelRevision, Measurement, QueueItem, RetrainRun


class RevisionInline(admin.TabularInline):
    model = LabelRevision
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in LabelRevision._meta.fields]


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ("id", "series", "slice_index", "x", "y", "label_class", "annotator", "version", "is_deleted")
    list_filter = ("label_class", "is_deleted", "is_adjudication")
    search_fields = ("series__series_uid", "study__study_uid", "annotator__username")
    inlines = [RevisionInline]
    readonly_fields = ("version",)


@admin.register(QueueItem)
class QueueItemAdmin(admin.ModelAdmin):
    list_display = ("id", "series", "slice_index", "x", "y", "strategy", "priority", "status", "leased_to",
                    "lease_expires", "consensus_class")
    list_filter = ("status", "strategy")


@admin.register(RetrainRun)
class RetrainRunAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "trigger", "n_labels", "base_version", "candidate_version", "created")
    list_filter = ("status", "trigger")
    readonly_fields = ("metrics", "snapshot")


@admin.register(Measurement)
class MeasurementAdmin(admin.ModelAdmin):
    """Read-only: the length is the portal's, computed from the indexed pixel spacing when the points change."""

    list_display = ("id", "series", "slice_index", "length_mm", "author", "created")
    search_fields = ("series__series_uid", "series__study__study_uid", "author__username")
    readonly_fields = [f.name for f in Measurement._meta.fields]


@admin.register(CopyMoveReview)
class CopyMoveReviewAdmin(admin.ModelAdmin):
    """Read-only: reviews are appended through the API (audited), never edited."""

    list_display = ("id", "series", "sop_instance_uid", "decision", "reviewer", "created")
    list_filter = ("decision",)
    search_fields = ("series__series_uid", "series__study__study_uid", "sop_instance_uid", "reviewer__username")
    readonly_fields = [f.name for f in CopyMoveReview._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
