"""The OpenAPI schema covers the API, and Swagger UI renders from our own static files."""

from __future__ import annotations

import re

import pytest
import yaml

pytestmark = pytest.mark.django_db


def test_openapi_schema_lists_every_endpoint(client) -> None:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/v1/tenants",
        "/api/v1/tenants/current",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{key_id}",
        "/api/v1/api-keys/{key_id}/revoke",
    } <= set(schema["paths"])
    created = schema["paths"]["/api/v1/api-keys"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"]["$ref"].endswith("ApiKeyCreatedOutput")


def test_swagger_ui_renders_without_a_cdn(client) -> None:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    external = re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", page)
    assert external == []
    bundle = re.search(r"""src=["']([^"']*swagger-ui-bundle\.js)["']""", page).group(1)
    assert client.get(bundle).status_code == 200


def _schema(client) -> dict:
    return yaml.safe_load(client.get("/api/schema/").content)


def test_every_operation_documents_its_errors_and_pages(client) -> None:
    """Issue 14: paginated lists were documented as arrays, 404/400/409/502 were undocumented."""
    schema = _schema(client)
    error = {"$ref": "#/components/schemas/Error"}
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            documented = operation["responses"]
            for status in ("400", "401", "403", "429", "503"):
                assert documented[status]["content"]["application/json"]["schema"] == error
            if "{" in path:
                assert "404" in documented, (method, path)
    paths = schema["paths"]
    assert "409" in paths["/api/v1/invocations"]["post"]["responses"]
    assert "502" in paths["/api/v1/model-providers/{provider}/discover"]["post"]["responses"]
    for path in ("/api/v1/invocations", "/api/v1/audit-log"):
        page = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        name = page["$ref"].rsplit("/", 1)[1]
        assert set(schema["components"]["schemas"][name]["properties"]) == {
            "count", "next", "previous", "results"
        }  # fmt: skip
    provider = next(
        p for p in paths["/api/v1/model-providers/{provider}"]["get"]["parameters"]
        if p["name"] == "provider"
    )  # fmt: skip
    assert "openai" in provider["schema"]["enum"]


@pytest.mark.parametrize(
    "url",
    [
        "POST /api/v1/invocations?wait=-1",
        "POST /api/v1/invocations?wait=31",
        "POST /api/v1/invocations?wait=soon",
        "/api/v1/invocations?status=done",
        "/api/v1/invocations?source=",
        "/api/v1/invocations?limit=0",
        "/api/v1/invocations?offset=x",
        "/api/v1/audit-log?limit=501",
        "/api/v1/models?model_type=",
        "/api/v1/model-providers?model_type=chat",
        "/api/v1/usage?source=cron",
        "/api/v1/usage?period=1y",
        "/api/v1/usage?export=pdf",
    ],
)
def test_a_value_the_schema_does_not_allow_is_a_field_error(key_client, url) -> None:
    method, _, url = url.rpartition(" ")
    client = key_client()
    response = client.post(url, {}, format="json") if method else client.get(url)
    assert response.status_code == 400, response.content
    name = url.split("?")[1].split("=")[0]
    assert list(response.json()["error"]["fields"]) == [name]


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/tenants/current", {"monthly_budget": 5}, "monthly_budget"),
        ("/api/v1/api-keys", {"name": 7}, "name"),
        (
            "/api/v1/model-providers/openai/models/import",
            {"credentials": {}, "models": [{"model": 0, "model_type": "llm"}]},
            "models.0.model",
        ),
    ],
)
def test_a_number_where_the_schema_says_string_is_refused(key_client, url, body, field) -> None:
    client = key_client()
    response = client.patch(url, body, format="json") if "tenants" in url else None
    response = response or client.post(url, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]


def test_an_unsafe_request_to_no_endpoint_is_json(key_client) -> None:
    """Django's CSRF check runs there (no DRF view): its refusal is the API's JSON too."""
    client = key_client()
    client.handler.enforce_csrf_checks = True  # as a real client meets it
    response = client.post("/api/v1/nowhere", {}, format="json")
    assert (response.status_code, response["Content-Type"]) == (403, "application/json")
    assert response.json()["error"]["code"] == "csrf_failed"
