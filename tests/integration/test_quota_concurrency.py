"""Concurrent calls on a limited quota: each reserves its tokens before the backend is called and
settles after, so between them they never spend past the limit, and the quota's count equals
what the served calls used. A real worker process holding 16 calls at once."""

from __future__ import annotations

import time

import pytest

from config.celery import app
from invocations import services as invocation_services
from invocations.models import Invocation
from providers import services
from providers.models import JobStatus, ProviderQuota, QuotaType
from tenants.principals import Principal
from tests.fakes.openai_server import OpenAIFake
from tests.jobs import start_worker_process

pytestmark = pytest.mark.processes


@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_never_spend_past_the_quota(tenant) -> None:
    """50 calls at once, 16 at a time in one worker: each reserves its tokens before calling, so
    the quota (five calls' worth) is spent exactly, by exactly the calls that succeeded."""
    quota = ProviderQuota.objects.create(
        tenant=tenant, provider="openai", quota_type=QuotaType.TRIAL, limit=40
    )
    with OpenAIFake(api_key="sk-quota-test-0002") as fake:
        services.credential_create(
            tenant=tenant,
            provider="openai",
            name="main",
            values={"openai_api_key": "sk-quota-test-0002", "openai_api_base": fake.url},
            actor=None,
        )
        app.control.purge()
        worker = start_worker_process("quota", threads=16)
        try:
            fake.fail("slow", times=50, seconds=0.3)  # calls overlap
            ids = [
                invocation_services.invocation_create(
                    principal=Principal(tenant=tenant, perms=frozenset()),
                    model_type="llm",
                    provider="openai",
                    model="gpt-4o-mini",
                    request={
                        "messages": [{"role": "user", "content": "count me in"}],
                        "parameters": {"max_tokens": 5},
                    },
                )[0].pk
                for _ in range(50)
            ]
            rows = _all_finished(Invocation, JobStatus, ids)
        finally:
            worker.terminate()
            worker.wait(10)
    served = [r for r in rows if r.status == JobStatus.SUCCEEDED]
    refused = [r for r in rows if r.status == JobStatus.FAILED]
    quota.refresh_from_db()
    assert {r.prompt_tokens + r.completion_tokens for r in served} == {8}
    assert len(served) == 5
    assert quota.used == 40 == sum(r.prompt_tokens + r.completion_tokens for r in served)
    assert {r.error_code for r in refused} == {"quota"}
    assert len(served) + len(refused) == 50


def _all_finished(model, status, ids, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while True:
        rows = list(model.objects.filter(pk__in=ids))
        if all(r.status in {status.SUCCEEDED, status.FAILED} for r in rows):
            return rows
        assert time.monotonic() < deadline, [r.status for r in rows]
        time.sleep(0.1)
