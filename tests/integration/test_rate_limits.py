"""Per-API-key limits: calls and tokens per minute, counted in Redis (shared by every process),
refused with 429 `rate_limited` and a Retry-After header, set at creation or with PATCH."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from invocations.models import Invocation
from providers import services
from tenants.models import ApiKey
from tests.fakes.openai_server import OpenAIFake
from tests.jobs import finished

pytestmark = pytest.mark.usefixtures("celery_worker_thread")
KEY = "sk-limits-0000000000001"
CHAT = {
    "model_type": "llm",
    "provider": "openai",
    "model": "gpt-4o-mini",
    "input": {"messages": [{"role": "user", "content": "count my tokens please"}]},
}


@pytest.fixture
def openai(tenant):
    with OpenAIFake(api_key=KEY) as fake:
        services.credential_create(
            tenant=tenant,
            provider="openai",
            name="main",
            values={"openai_api_key": KEY, "openai_api_base": fake.url},
            actor=None,
        )
        yield fake


@pytest.fixture
def owner(key_client):
    return key_client(scopes=["read", "write", "invoke"])


def _limited_key(owner, **limits) -> str:
    made = owner.post(
        "/api/v1/api-keys", {"name": "limited", "scopes": ["invoke"], **limits}, format="json"
    )
    assert made.status_code == 201, made.content
    assert {k: made.json()[k] for k in limits} == limits
    return made.json()["key"]


def test_calls_per_minute(owner, openai, api_client) -> None:
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {_limited_key(owner, rpm_limit=2)}")
    for _ in range(2):
        assert api_client.post("/api/v1/invocations", CHAT, format="json").status_code == 202
    refused = api_client.post("/api/v1/invocations", CHAT, format="json")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert "2 model calls a minute" in refused.json()["error"]["message"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    # Another key of the workspace is not held to this one's limit.
    assert owner.post("/api/v1/invocations", CHAT, format="json").status_code == 202


def test_tokens_per_minute(owner, openai, api_client) -> None:
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {_limited_key(owner, tpm_limit=5)}")
    first = api_client.post("/api/v1/invocations", CHAT, format="json")
    assert first.status_code == 202
    done = finished(api_client, f"/api/v1/invocations/{first.json()['id']}")
    assert done["status"] == "succeeded"
    assert done["prompt_tokens"] + done["completion_tokens"] >= 5
    refused = api_client.post("/api/v1/invocations", CHAT, format="json")
    assert refused.status_code == 429
    assert "tokens of this minute" in refused.json()["error"]["message"]
    assert refused.has_header("Retry-After")


def test_limits_are_changed_with_patch_and_checked(owner) -> None:
    key = owner.post("/api/v1/api-keys", {"name": "k", "scopes": ["invoke"]}, format="json")
    url = f"/api/v1/api-keys/{key.json()['id']}"
    assert key.json()["rpm_limit"] is None
    changed = owner.patch(url, {"rpm_limit": 100}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["rpm_limit"], changed.json()["tpm_limit"]) == (100, None)
    bad = owner.patch(url, {"rpm_limit": 0, "tpm_limit": "many"}, format="json")
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"rpm_limit", "tpm_limit"}
    cleared = owner.patch(url, {"rpm_limit": None}, format="json")
    assert cleared.json()["rpm_limit"] is None
    assert ApiKey.objects.get(pk=key.json()["id"]).rpm_limit is None


def test_an_invoke_only_key_cannot_raise_its_own_limits(owner) -> None:
    made = owner.post(
        "/api/v1/api-keys", {"name": "k", "scopes": ["invoke"], "rpm_limit": 1}, format="json"
    ).json()
    itself = APIClient()
    itself.credentials(HTTP_AUTHORIZATION=f"Bearer {made['key']}")
    refused = itself.patch(f"/api/v1/api-keys/{made['id']}", {"rpm_limit": None}, format="json")
    assert refused.status_code == 403
    assert ApiKey.objects.get(pk=made["id"]).rpm_limit == 1


def test_a_write_key_cannot_lift_its_own_limits_nor_mint_a_looser_key(owner) -> None:
    """A key with write scope may manage keys, but not its own limits, and not give a key (new
    or existing) more than it is held to: else it would lift its limits by proxy."""
    made = owner.post(
        "/api/v1/api-keys",
        {"name": "bot", "scopes": ["write", "invoke"], "rpm_limit": 10, "monthly_budget": "5"},
        format="json",
    ).json()
    bot = APIClient()
    bot.credentials(HTTP_AUTHORIZATION=f"Bearer {made['key']}")
    itself = bot.patch(f"/api/v1/api-keys/{made['id']}", {"rpm_limit": 1000}, format="json")
    assert itself.status_code == 403
    assert "cannot change itself" in itself.json()["error"]["message"]
    budget = bot.patch("/api/v1/tenants/current", {"monthly_budget": None}, format="json")
    assert budget.status_code == 403  # nor the workspace's budget that may be stopping it

    looser = bot.post("/api/v1/api-keys", {"name": "x", "scopes": ["invoke"]}, format="json")
    assert looser.status_code == 400
    assert set(looser.json()["error"]["fields"]) == {"rpm_limit", "monthly_budget"}
    other_currency = bot.post(
        "/api/v1/api-keys",
        {"name": "x", "scopes": ["invoke"], "rpm_limit": 10, "monthly_budget": "1",
         "budget_currency": "CNY"},
        format="json",
    )  # fmt: skip
    assert set(other_currency.json()["error"]["fields"]) == {"monthly_budget"}
    within = bot.post(
        "/api/v1/api-keys",
        {"name": "x", "scopes": ["invoke"], "rpm_limit": 5, "monthly_budget": "5"},
        format="json",
    )
    assert within.status_code == 201, within.content
    lifted = bot.patch(
        f"/api/v1/api-keys/{within.json()['id']}", {"rpm_limit": None}, format="json"
    )
    assert lifted.status_code == 400
    assert ApiKey.objects.get(pk=within.json()["id"]).rpm_limit == 5
    # A workspace admin's key has no limits of its own: it may set any.
    freed = owner.patch(f"/api/v1/api-keys/{made['id']}", {"rpm_limit": None}, format="json")
    assert freed.status_code == 200
    assert ApiKey.objects.get(pk=made["id"]).rpm_limit is None


def test_a_spent_workspace_budget_refuses_calls_until_the_month_ends(owner, openai, tenant) -> None:
    """gpt-4o-mini is priced in USD: once the month's costs reach the budget, calls are refused
    (429 budget_exhausted, Retry-After until the 1st); raising the budget lets them through."""
    url = "/api/v1/tenants/current"
    too_fine = owner.patch(url, {"monthly_budget": "0.000000001"}, format="json")
    assert too_fine.status_code == 400
    set_up = owner.patch(url, {"monthly_budget": "0.01"}, format="json")
    assert (set_up.json()["monthly_budget"], set_up.json()["budget_currency"]) == (
        "0.01000000",
        "USD",
    )
    first = owner.post("/api/v1/invocations", CHAT, format="json")
    assert finished(owner, f"/api/v1/invocations/{first.json()['id']}")["status"] == "succeeded"
    spent_so_far = Invocation.objects.get(pk=first.json()["id"]).cost
    assert spent_so_far > 0
    owner.patch("/api/v1/tenants/current", {"monthly_budget": str(spent_so_far)}, format="json")
    refused = owner.post("/api/v1/invocations", CHAT, format="json")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "budget_exhausted"
    assert "monthly budget" in refused.json()["error"]["message"]
    assert int(refused["Retry-After"]) > 0
    owner.patch("/api/v1/tenants/current", {"monthly_budget": None}, format="json")
    assert owner.post("/api/v1/invocations", CHAT, format="json").status_code == 202


def test_a_key_budget_counts_only_that_keys_calls(owner, openai, api_client) -> None:
    made = owner.post(
        "/api/v1/api-keys",
        {"name": "budgeted", "scopes": ["invoke"], "monthly_budget": "0.00"},
        format="json",
    ).json()
    assert made["monthly_budget"] == "0.00000000"
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {made['key']}")
    refused = api_client.post("/api/v1/invocations", CHAT, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "budget_exhausted")
    assert "This API key's monthly budget" in refused.json()["error"]["message"]
    assert owner.post("/api/v1/invocations", CHAT, format="json").status_code == 202


def test_only_owners_and_admins_set_the_workspace_budget(key_client) -> None:
    reader = key_client(scopes=["read", "invoke"])
    refused = reader.patch("/api/v1/tenants/current", {"monthly_budget": "5"}, format="json")
    assert refused.status_code == 403
    bad = key_client(scopes=["write"]).patch(
        "/api/v1/tenants/current",
        {"monthly_budget": "-1", "budget_currency": "dollars"},
        format="json",
    )
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"monthly_budget", "budget_currency"}
    number = key_client(scopes=["write"]).patch(
        "/api/v1/tenants/current", {"monthly_budget": -5}, format="json"
    )
    assert number.json()["error"]["fields"]["monthly_budget"] == [
        'Give the amount as a JSON string, such as "100.00".'
    ]


def test_a_budget_change_is_in_the_audit_log(key_client) -> None:
    writer = key_client(scopes=["write", "read"])
    for body in (
        {"monthly_budget": "25.50"},
        {"budget_currency": "CNY"},
        {"budget_currency": "CNY"},
    ):
        assert writer.patch("/api/v1/tenants/current", body, format="json").status_code == 200
    entries = writer.get("/api/v1/audit-log").json()["results"]
    budget = [(e["action"], e["changes"]) for e in entries if e["action"] == "workspace.budget"]
    assert sorted(budget, key=str) == sorted(
        [
            ("workspace.budget", {"monthly_budget": [None, "25.50000000"]}),
            ("workspace.budget", {"budget_currency": ["USD", "CNY"]}),
        ],
        key=str,
    )  # the unchanged third save is not an entry
