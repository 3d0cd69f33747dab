"""An admin downloads audit events as CSV for an auditor's own tools; the download is itself audited."""

import csv
import io
import json

import pytest
from django.test import Client

from portal.accounts.models import AuditEvent
from portal.accounts.services import audit

pytestmark = pytest.mark.django_db


def test_admin_downloads_selected_audit_events_as_csv(user_factory):
    admin, clinician = user_factory("admin"), user_factory("clinician")
    audit(clinician, "study.view", object_type="Study", object_id="7", via="viewer")
    audit(None, "study.image_reuse", object_type="Study", object_id="8", shared_images=92)
    client = Client()
    client.force_login(admin)
    ids = list(AuditEvent.objects.order_by("pk").values_list("pk", flat=True))
    response = client.post("/admin/accounts/auditevent/", {"action": "download_csv", "_selected_action": ids})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["actor"], r["action"], r["object_id"]) for r in rows] == [
        (clinician.username, "study.view", "7"), ("", "study.image_reuse", "8")]
    assert json.loads(rows[0]["details"]) == {"via": "viewer"} and json.loads(rows[1]["details"]) == {
        "shared_images": 92}
    exported = AuditEvent.objects.get(action="audit.export")
    assert exported.actor == admin and exported.details == {"events": 2}
    clinician_client = Client()
    clinician_client.force_login(clinician)
    assert clinician_client.post("/admin/accounts/auditevent/", {"action": "download_csv",
                                                                 "_selected_action": ids}).status_code == 302
