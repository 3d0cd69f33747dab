from django.contrib import admin

from portal.claims.models import Claim, ClaimImage, EncryptedShare, LedgerEntry


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["seq", "recorded_at", "sop_instance_uid", "pixel_sha256", "key_id"]
    search_fields = ["sop_instance_uid", "study_uid", "pixel_sha256"]


class ClaimImageInline(admin.TabularInline):
    model = ClaimImage
    fields = ["position", "original_name", "kind", "provenance", "status"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Claim)
class ClaimAdmin(admin.ModelAdmin):
    list_display = ["reference", "insurer", "created"]
    search_fields = ["reference"]
    inlines = [ClaimImageInline]


@admin.register(EncryptedShare)
class EncryptedShareAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "created_by", "created", "recipient"]
