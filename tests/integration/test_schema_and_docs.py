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
