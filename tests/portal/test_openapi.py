"""The OpenAPI schema (/api/schema/) describes every API endpoint: no view drf-spectacular has to guess."""

import pytest
import yaml
from django.core.management import call_command


def test_schema_generates_without_warnings_and_validates(tmp_path):
    out = tmp_path / "schema.yml"
    # --fail-on-warn: an undescribed view ("unable to guess serializer"), a colliding operationId or an
    # ambiguous enum name fails here instead of silently degrading the published schema.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    operations = [(path, method, op) for path, item in schema["paths"].items()
                  for method, op in item.items() if method in ("get", "post", "put", "patch", "delete")]  # fmt: skip
    assert len(operations) > 40
    ids = [op["operationId"] for _, _, op in operations]
    assert len(ids) == len(set(ids))
    for path, method, op in operations:  # every operation says what its success answer is
        assert any(code.startswith("2") for code in op["responses"]), (method, path)
    labels = schema["paths"]["/api/labels"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    page = schema["components"]["schemas"][labels["$ref"].rsplit("/", 1)[1]]
    assert {"count", "next", "previous", "results"} <= set(page["properties"])
    # What the API answers and the schema must agree on (each was a mismatch schemathesis found).
    components = schema["components"]["schemas"]
    assert components["ModelVersion"]["properties"]["parent"].get("nullable") is True
    assert components["RetrainRun"]["properties"]["base_version"].get("nullable") is True
    label_400 = schema["paths"]["/api/labels"]["post"]["responses"]["400"]["content"]["application/json"]["schema"]
    assert label_400["type"] == "object" and "$ref" not in label_400  # field errors, not only {detail}
    # Without credentials the API answers 401, documented on every operation that needs them.
    assert "401" in schema["paths"]["/api/studies"]["get"]["responses"]
    assert "401" not in schema["paths"]["/api/provenance/keys"]["get"]["responses"]  # public
    # A page past the end is a 404 {detail}, on every paginated list.
    paginated = [(path, op) for path, method, op in operations
                 if any(p["name"] == "page" for p in op.get("parameters", []))]  # fmt: skip
    assert len(paginated) >= 5 and all("404" in op["responses"] for _, op in paginated), paginated


@pytest.mark.django_db
def test_a_page_past_the_end_is_the_documented_404(user_factory, api_client):
    response = api_client(user_factory("admin")).get("/api/studies?page=99")
    assert response.status_code == 404 and response.json() == {"detail": "Invalid page."}


@pytest.mark.django_db
def test_schema_and_its_ui_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
