from django.contrib import admin

from detection.models import CopyMoveCheck, ModelVersion, ScoringJob


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "arch", "status", "trained", "created", "promoted_at")
    list_filter = ("status", "trained")
    readonly_fields = ("metrics", "config")


@admin.register(ScoringJob)
class ScoringJobAdmin(admin.ModelAdmin):
    list_display = ("id", "series", "model_version", "status", "attempts", "created", "finished", "verdict")
    list_filter = ("status",)


@admin.register(CopyMoveCheck)
class CopyMoveCheckAdmin(admin.ModelAdmin):
    list_display = ("id", "series", "status", "images_checked", "created", "finished")
    list_filter = ("status",)
    readonly_fields = ("found",)
