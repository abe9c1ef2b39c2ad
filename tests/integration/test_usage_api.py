"""GET /api/v1/usage: job and gateway calls totalled per day, provider, model, API key or source,
as JSON or a CSV download."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from invocations.models import Invocation
from tenants import services as tenant_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls(tenant, other_tenant):
    key, _ = tenant_services.api_key_create(tenant=tenant, name="app", scopes=["invoke"])

    def make(**fields):
        base = {"tenant": tenant, "model_type": "llm", "status": "succeeded", "latency_ms": 10}
        return Invocation.objects.create(**{**base, **fields})

    make(
        provider="openai",
        model="gpt-4o",
        prompt_tokens=10,
        completion_tokens=5,
        cost=Decimal("0.001"),
        currency="USD",
        api_key=key,
        source="gateway",
    )
    make(
        provider="openai",
        model="gpt-4o",
        prompt_tokens=1,
        completion_tokens=1,
        status="failed",
        latency_ms=30,
        source="job",
    )
    make(
        provider="tongyi",
        model="=cmd|' /C calc'!A0",
        prompt_tokens=3,
        cost=Decimal("0.5"),
        currency="CNY",
        api_key=key,
        source="gateway",
    )
    Invocation.objects.create(tenant=other_tenant, model_type="llm", provider="openai",
                              model="gpt-4o", prompt_tokens=999)  # fmt: skip
    return key


def test_totals_grouped_as_asked(key_client, calls) -> None:
    client = key_client(scopes=["read"])
    body = client.get("/api/v1/usage?group_by=provider,source").json()
    assert body["group_by"] == ["provider", "source"]
    groups = {(g["provider"], g["source"]): g for g in body["groups"]}
    assert set(groups) == {("openai", "gateway"), ("openai", "job"), ("tongyi", "gateway")}
    assert groups[("openai", "job")]["errors"] == 1
    assert groups[("openai", "gateway")]["cost"] == {"USD": "0.001"}
    assert body["total"]["calls"] == 3  # not the other workspace's
    assert body["total"]["prompt_tokens"] == 14
    assert body["total"]["cost"] == {"CNY": "0.5", "USD": "0.001"}
    by_key = client.get("/api/v1/usage?group_by=api_key&source=gateway").json()
    assert [(g["api_key"], g["calls"]) for g in by_key["groups"]] == [(calls.pk, 2)]
    daily = client.get("/api/v1/usage").json()
    assert daily["group_by"] == ["day", "provider", "model"]
    assert all(len(g["day"]) == 10 for g in daily["groups"])
    refused = client.get("/api/v1/usage?group_by=provider,planet")
    assert refused.status_code == 400
    assert "planet" in refused.json()["error"]["fields"]["group_by"][0]
    assert key_client(scopes=["invoke"]).get("/api/v1/usage").status_code == 403


def test_a_csv_download_that_a_spreadsheet_cannot_run(key_client, calls) -> None:
    response = key_client(scopes=["read"]).get("/api/v1/usage?group_by=provider,model&export=csv")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["provider", "model", "calls", "errors", "prompt_tokens",
                       "completion_tokens", "cost_CNY", "cost_USD", "p50_ms", "p95_ms"]  # fmt: skip
    assert ["openai", "gpt-4o", "2", "1", "11", "6", "0", "0.001", "10", "30"] in rows
    tongyi = next(r for r in rows if r[0] == "tongyi")
    assert tongyi[1] == "'=cmd|' /C calc'!A0"  # a formula is text, not a command
