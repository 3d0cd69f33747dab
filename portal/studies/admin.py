from django.contrib import admin

from portal.studies.models import Instance, Patient, Series, Study, StudyAccess, UploadBatch


class StudyAccessInline(admin.TabularInline):
    model = StudyAccess
    extra = 0
    fk_name = "study"


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("study_uid", "patient", "study_date", "description", "verdict", "verdict_score",
                    "copy_move_images", "uploaded_by", "withdrawn_at")
    list_filter = ("verdict", ("withdrawn_at", admin.EmptyFieldListFilter))
    # Withdrawing and restoring go through the API (audited, reason required), not a form field.
    # The verdicts follow the scoring jobs and copy-move checks (detection), not a form field either.
    readonly_fields = ("verdict", "verdict_score", "model_version", "copy_move_images",
                       "withdrawn_at", "withdrawn_by", "withdrawn_reason")
    search_fields = ("study_uid", "patient__patient_id", "description")
    inlines = [StudyAccessInline]


@admin.register(Series)
class SeriesAdmin(admin.ModelAdmin):
    list_display = ("series_uid", "study", "modality", "description")


admin.site.register(Patient)
admin.site.register(Instance)


@admin.register(UploadBatch)
class UploadBatchAdmin(admin.ModelAdmin):
    list_display = ("id", "uploaded_by", "created", "status", "instances_staged", "instances_stored", "attempts")
    list_filter = ("status",)
