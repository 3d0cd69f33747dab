"""/readyz on real services: database, Orthanc and RabbitMQ answer; a PACS that is not there makes it 503;
a real worker process consuming the portal's queue is counted."""

import pytest

from portal.orthanc import free_port
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db


def test_ready_when_database_pacs_and_broker_answer(client, orthanc):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200 and body["ready"] is True
    assert body["checks"] == {"database": "ok", "pacs": "ok", "broker": "ok"}


def test_not_ready_when_the_pacs_is_unreachable(client, settings):
    settings.DICOMWEB_URL = f"http://127.0.0.1:{free_port()}/dicom-web"  # nothing listens there
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["pacs"].startswith("down: ") and response.json()["checks"]["database"] == "ok"


@pytest.mark.slow
def test_a_running_worker_on_the_portal_queue_is_counted(client, scoring_worker):
    assert wait_for(lambda: (client.get("/readyz").json()["workers"] or 0) >= 1, timeout=60,
                    message="the worker should answer the broker's inspect broadcast")
