"""Provider quotas: a used-up quota refuses calls with a typed error; usage is counted atomically
and never passes the limit."""

from __future__ import annotations

import pytest

from providers import services
from providers.models import ProviderQuota, QuotaType
from tests.fakes.openai_server import OpenAIFake
from tests.jobs import finished

pytestmark = pytest.mark.usefixtures("celery_worker_thread")


def test_calls_count_against_the_quota_until_it_is_used_up(tenant, key_client) -> None:
    client = key_client()
    quota = ProviderQuota.objects.create(
        tenant=tenant, provider="openai", quota_type=QuotaType.TRIAL, limit=12
    )
    unlimited = ProviderQuota.objects.create(
        tenant=tenant, provider="openai", quota_type=QuotaType.PAID, limit=-1, used=5
    )
    with OpenAIFake(api_key="sk-quota-test-0001") as fake:
        services.credential_create(
            tenant=tenant,
            provider="openai",
            name="main",
            values={"openai_api_key": "sk-quota-test-0001", "openai_api_base": fake.url},
            actor=None,
        )
        body = {
            "model_type": "llm",
            "provider": "openai",
            "model": "gpt-4o-mini",
            "input": {"messages": [{"role": "user", "content": "count me in"}]},
        }

        first = client.post("/api/v1/invocations", body, format="json").json()
        done = finished(client, f"/api/v1/invocations/{first['id']}")
        assert done["status"] == "succeeded", done
        quota.refresh_from_db()
        assert quota.used == done["prompt_tokens"] + done["completion_tokens"] == 8

        second = client.post("/api/v1/invocations", body, format="json").json()
        assert finished(client, f"/api/v1/invocations/{second['id']}")["status"] == "succeeded"
        quota.refresh_from_db()
        assert quota.used == 12  # 8 + 8 would pass the limit: it stops there

        third = client.post("/api/v1/invocations", body, format="json").json()
        refused = finished(client, f"/api/v1/invocations/{third['id']}")
        assert (refused["status"], refused["error_code"]) == ("failed", "quota")
        assert "trial quota of openai is used up (12/12)" in refused["error_message"]
    unlimited.refresh_from_db()
    assert unlimited.used == 5  # -1: unlimited, not counted
