import csv
import json

from django.contrib import admin
from django.http import HttpResponse

from portal.accounts.models import AuditEvent
from portal.accounts.services import audit


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created", "actor", "action", "object_type", "object_id")
    list_filter = ("action", "object_type")
    search_fields = ("object_id", "actor__username")
    date_hierarchy = "created"
    actions = ["download_csv"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the audit log is append-only

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Download the selected events as CSV")
    def download_csv(self, request, queryset):
        """For an auditor's own tools: one row per event, oldest first, its details as JSON."""
        response = HttpResponse(content_type="text/csv; charset=utf-8",
                                headers={"Content-Disposition": 'attachment; filename="audit-events.csv"'})
        writer = csv.writer(response)
        writer.writerow(["created", "actor", "action", "object_type", "object_id", "details"])
        for event in queryset.select_related("actor").order_by("created", "pk"):
            writer.writerow([event.created.isoformat(), event.actor.username if event.actor else "", event.action,
                             event.object_type, event.object_id, json.dumps(event.details, sort_keys=True)])
        audit(request.user, "audit.export", object_type="AuditEvent", object_id="*", events=queryset.count())
        return response
