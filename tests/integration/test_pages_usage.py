"""Settings > Usage: aggregates computed from a workspace's own invocations, narrowed by filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from invocations import usage
from invocations.models import Invocation
from tenants import services
from tenants.models import Role

pytestmark = [pytest.mark.django_db]


def make_invocation(tenant, *, created_at=None, **fields) -> Invocation:
    values = {
        "model_type": "llm",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "status": "succeeded",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "latency_ms": 100,
    }
    values.update(fields)
    invocation = Invocation.objects.create(tenant=tenant, **values)
    if created_at is not None:  # created_at is auto_now_add
        Invocation.objects.filter(pk=invocation.pk).update(created_at=created_at)
        invocation.created_at = created_at
    return invocation


@pytest.fixture
def traffic(tenant, other_tenant):
    """In `tenant`, within the last hour: 20 openai calls (latencies 10..200 ms, 2 failed, each
    0.001 USD) and 3 anthropic calls made with a key (1, 2 and 3 s, 0.5 CNY each); 2 days ago
    one more openai call; 10 days ago one more. In `other_tenant`: calls that must never show."""
    now = timezone.now()
    key, _ = services.api_key_create(tenant=tenant, name="Batch", scopes=["invoke"])
    for i in range(1, 21):
        failed = i in (3, 7)
        make_invocation(
            tenant,
            created_at=now - timedelta(minutes=i),
            latency_ms=i * 10,
            status="failed" if failed else "succeeded",
            error_code="rate_limit" if failed else "",
            error_message="Too many requests, slow down" if failed else "",
            cost=Decimal("0.001"),
            currency="USD",
        )
    for seconds in (1, 2, 3):
        make_invocation(
            tenant,
            created_at=now - timedelta(minutes=30),
            provider="anthropic",
            model="claude-3-haiku",
            api_key=key,
            prompt_tokens=100,
            completion_tokens=50,
            latency_ms=seconds * 1000,
            cost=Decimal("0.5"),
            currency="CNY",
        )
    make_invocation(tenant, created_at=now - timedelta(days=2), latency_ms=None)
    make_invocation(tenant, created_at=now - timedelta(days=10), prompt_tokens=1000)
    other_key, _ = services.api_key_create(tenant=other_tenant, name="Theirs", scopes=["invoke"])
    for _ in range(5):
        make_invocation(
            other_tenant,
            provider="secret-provider",
            model="secret-model",
            api_key=other_key,
            error_message="their-private-error",
        )
    return {"key": key, "other_key": other_key}


@pytest.fixture
def owner(client, make_member, tenant):
    user = make_member(tenant, Role.OWNER)
    client.force_login(user)
    return user


def get_usage(client, **params):
    response = client.get(reverse("settings-usage"), params)
    assert response.status_code == 200
    return response


def test_percentile_is_nearest_rank() -> None:
    values = list(range(10, 201, 10))  # 20 values
    assert usage.percentile(values, 50) == 100
    assert usage.percentile(values, 95) == 190
    assert usage.percentile([7], 95) == 7
    assert usage.percentile([], 50) is None


@pytest.mark.parametrize("role", Role.values)
def test_the_page_renders_for_every_role(client, make_member, tenant, traffic, role) -> None:
    client.force_login(make_member(tenant, role))
    page = get_usage(client).content.decode()
    assert page.count('role="img"') == 4  # each chart drawn wide, and narrow for phones
    assert '<title id="calls-chart-title">Calls per day</title>' in page
    assert 'id="usage-buckets"' in page  # the table behind the charts
    assert 'id="recent-invocations"' in page


def test_totals_and_per_model_numbers(client, owner, traffic) -> None:
    response = get_usage(client)  # the last 7 days
    total = response.context["total"]
    assert total.calls == 24
    assert total.errors == 2
    assert total.prompt_tokens == 20 * 10 + 3 * 100 + 10
    assert total.completion_tokens == 20 * 5 + 3 * 50 + 5
    assert total.cost_items == [("CNY", "1.5"), ("USD", "0.02")]

    rows = {(r.provider, r.model): r for r in response.context["summary"].rows}
    openai = rows[("openai", "gpt-4o-mini")]
    assert (openai.calls, openai.errors, openai.tokens) == (21, 2, 21 * 15)
    assert (openai.p50_ms, openai.p95_ms) == (100, 190)  # the call with no latency is not counted
    anthropic = rows[("anthropic", "claude-3-haiku")]
    assert (anthropic.calls, anthropic.errors, anthropic.tokens) == (3, 0, 450)
    assert (anthropic.p50_ms, anthropic.p95_ms) == (2000, 3000)
    assert list(rows) == [("openai", "gpt-4o-mini"), ("anthropic", "claude-3-haiku")]

    page = response.content.decode()
    assert 'data-total="calls">24<' in page
    assert 'data-total="errors">2<' in page
    assert 'data-col="p95">190 ms</td>' in page
    assert "Too many requests, slow down" in page  # the recent table shows errors
    assert "rate_limit" in page
    buckets = response.context["summary"].buckets
    assert len(buckets) == 7
    assert sum(b.calls for b in buckets) == 24
    assert sum(b.errors for b in buckets) == 2


def test_filters_narrow_the_numbers(client, owner, traffic) -> None:
    def calls(**params):
        return get_usage(client, **params).context["total"].calls

    assert calls(period="24h") == 23
    assert calls(period="30d") == 25
    assert calls(provider="anthropic") == 3
    assert calls(model="gpt-4o-mini") == 21
    assert calls(model="gpt-4o-mini", period="30d") == 22
    assert calls(api_key=str(traffic["key"].pk)) == 3
    assert calls(api_key=usage.NO_API_KEY) == 21
    assert calls(provider="anthropic", model="gpt-4o-mini") == 0
    assert calls(period="nonsense", api_key="not-a-number") == 24  # ignored, not an error

    page = get_usage(client, provider="anthropic").content.decode()
    assert "Too many requests" not in page
    assert '<option value="anthropic" selected>' in page

    Invocation.objects.filter(provider="anthropic").update(source="gateway")
    assert calls(source="gateway") == 3
    assert calls(source="job") == 21
    assert calls(source="planet") == 24  # ignored, not an error
    shown = get_usage(client, source="gateway").content.decode()
    assert '<option value="gateway" selected>' in shown
    assert shown.count('<span class="badge">gateway</span>') == 3


def test_hourly_buckets_for_the_last_24_hours(client, owner, traffic) -> None:
    summary = get_usage(client, period="24h").context["summary"]
    assert len(summary.buckets) == 24
    assert sum(b.calls for b in summary.buckets) == 23
    assert "Calls per hour" in get_usage(client, period="24h").content.decode()


def test_buckets_fall_on_the_right_days(tenant) -> None:
    now = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    make_invocation(tenant, created_at=datetime(2025, 3, 10, 0, 30, tzinfo=UTC))
    make_invocation(tenant, created_at=datetime(2025, 3, 8, 23, 59, tzinfo=UTC), status="failed")
    make_invocation(tenant, created_at=datetime(2025, 3, 4, 0, 0, tzinfo=UTC))  # first day
    make_invocation(tenant, created_at=datetime(2025, 3, 3, 23, 59, tzinfo=UTC))  # too old
    with timezone.override("UTC"):
        summary = usage.usage_summary(tenant=tenant, filters=usage.UsageFilters(), now=now)
    assert summary.since == datetime(2025, 3, 4, tzinfo=UTC)
    assert [b.calls for b in summary.buckets] == [1, 0, 0, 0, 1, 0, 1]
    assert [b.errors for b in summary.buckets] == [0, 0, 0, 0, 1, 0, 0]
    assert summary.buckets[-1].tokens == 15


def test_another_workspaces_invocations_never_show(client, owner, traffic) -> None:
    for params in ({}, {"provider": "secret-provider"}, {"api_key": traffic["other_key"].pk}):
        response = get_usage(client, period="30d", **params)
        page = response.content.decode()
        assert "secret-provider" not in page or params.get("provider") == "secret-provider"
        assert "secret-model" not in page
        assert "their-private-error" not in page
        assert "Theirs" not in page
        if params:
            assert response.context["total"].calls == 0


def test_an_empty_workspace_has_an_empty_page(client, owner) -> None:
    response = get_usage(client)
    assert response.context["total"].calls == 0
    assert "No calls match these filters in this period." in response.content.decode()
