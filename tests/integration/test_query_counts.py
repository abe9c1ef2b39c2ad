"""List endpoints cost a fixed number of queries, however many providers and models there are."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from providers import selectors, services

pytestmark = pytest.mark.django_db

LISTS = [
    "/api/v1/model-providers",
    "/api/v1/model-providers/xinference/models",
    "/api/v1/model-providers/openai/credentials",
    "/api/v1/models",
    "/api/v1/default-models",
    "/api/v1/audit-log",
]


def grow(tenant, n: int) -> None:
    """Add n credentials, n custom models, settings and LB entries."""
    start = services.selectors.workspace_state(tenant=tenant).custom_models.get("xinference", [])
    offset = len(start)
    for i in range(offset, offset + n):
        services.credential_create(
            tenant=tenant,
            provider="openai",
            name=f"key{i}",
            values={"openai_api_key": f"sk-{i:020d}"},
            actor=None,
        )
        services.custom_model_create(
            tenant=tenant,
            provider="xinference",
            model=f"m{i}",
            model_type="llm",
            values={"server_url": "http://10.0.0.1:9997", "model_uid": f"m{i}"},
            actor=None,
        )
        view = selectors.model_get(
            tenant=tenant, provider="xinference", model_key=selectors.model_id("llm", f"m{i}")
        )
        services.model_setting_update(tenant=tenant, view=view, enabled=i % 2 == 0, actor=None)


def count(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_list_query_counts_stay_flat_as_data_grows(tenant, key_client) -> None:
    client = key_client()
    client.get("/api/v1/tenants/current")  # the key's first use writes last_used_at: not counted
    grow(tenant, 1)
    small = {url: count(client, url) for url in LISTS}
    grow(tenant, 12)
    large = {url: count(client, url) for url in LISTS}
    assert large == small
    assert max(small.values()) <= 9, small
