"""One workspace's slow backend does not hold every worker: at most WORKSPACE_JOB_CONCURRENCY of a
workspace's jobs run at once (jobs.SLOTS, in Redis); the others wait in the queue while other
workspaces' jobs run. The proof runs a real threads-pool worker process, as scripts/run does."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from config import shared_state
from config.celery import app
from invocations import services as invocation_services
from invocations.models import Invocation
from providers import jobs, services
from providers.models import JobStatus
from tenants.principals import Principal
from tests.fakes.openai_server import OpenAIFake
from tests.jobs import start_worker_process

KEY = "sk-fairness-test-0001"


def _configure(tenant, fake: OpenAIFake) -> None:
    services.credential_create(
        tenant=tenant,
        provider="openai",
        name="main",
        values={"openai_api_key": KEY, "openai_api_base": fake.url},
        actor=None,
    )


def _submit(tenant, text: str) -> int:
    invocation, _ = invocation_services.invocation_create(
        principal=Principal(tenant=tenant, perms=frozenset()),
        model_type="llm",
        provider="openai",
        model="gpt-4o-mini",
        request={"messages": [{"role": "user", "content": text}]},
    )
    return invocation.pk


@pytest.mark.redis
@override_settings(WORKSPACE_JOB_CONCURRENCY=2, JOB_LEASE_SECONDS=30)
def test_slots_are_counted_per_workspace_and_lapse_without_their_worker() -> None:
    slots = jobs.SLOTS
    assert slots.take(1, "invocation:1:a")
    assert slots.take(1, "invocation:2:a")
    assert not slots.take(1, "invocation:3:a")  # workspace 1 has its two
    assert slots.take(2, "invocation:4:a")  # another workspace is not counted with it
    slots.release(1, "invocation:1:a")
    assert slots.take(1, "invocation:3:a")
    # A worker that died frees nothing; its slot lapses a lease's length after its last renewal.
    client = shared_state.client()
    client.zadd(slots.key(1), {"invocation:2:a": time.time() - 1})
    assert slots.take(1, "invocation:5:a")
    slots.renew([(1, "invocation:3:a")])
    assert client.ttl(slots.key(1)) > 0
    assert client.zscore(slots.key(1), "invocation:3:a") > time.time() + 20


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_slow_workspace_does_not_queue_another_workspaces_jobs(tenant, other_tenant) -> None:
    with OpenAIFake(api_key=KEY) as slow, OpenAIFake(api_key=KEY) as quick:
        _configure(tenant, slow)
        _configure(other_tenant, quick)
        slow.fail("slow", times=100, seconds=4)  # every call of the slow workspace takes 4 s
        app.control.purge()
        worker = start_worker_process("fair", threads=4, WORKSPACE_JOB_CONCURRENCY="2")
        try:
            slow_jobs = [_submit(tenant, f"slow {n}") for n in range(6)]
            time.sleep(0.3)  # the worker has taken the slow workspace's jobs first
            submitted = time.monotonic()
            quick_job = _submit(other_tenant, "quick")
            most_running = 0
            while True:
                done = Invocation.objects.get(pk=quick_job)
                running = Invocation.objects.filter(
                    pk__in=slow_jobs, status=JobStatus.RUNNING
                ).count()
                most_running = max(most_running, running)
                if done.status in {JobStatus.SUCCEEDED, JobStatus.FAILED}:
                    break
                assert time.monotonic() - submitted < 10, "the quick job waited"
                time.sleep(0.05)
            waited = time.monotonic() - submitted
            # Four threads, six slow jobs ahead of it: without a per-workspace share the quick
            # job waits for a slow one to end (4 s); with one, it runs on a free thread at once.
            assert done.status == JobStatus.SUCCEEDED, done.error_message
            assert waited < 3, waited
            assert most_running <= 2
            finished_slow = Invocation.objects.filter(
                pk__in=slow_jobs, status=JobStatus.SUCCEEDED
            ).count()
            assert finished_slow == 0  # the quick one passed them
            deadline = time.monotonic() + 30
            while (
                Invocation.objects.filter(pk__in=slow_jobs, status=JobStatus.SUCCEEDED).count() < 6
            ):
                assert time.monotonic() < deadline, "the slow workspace's jobs did not all end"
                time.sleep(0.1)
        finally:
            worker.terminate()
            worker.wait(10)
    assert all(r.path.endswith("/chat/completions") for r in slow.received)
    assert len([r for r in slow.received if r.path.endswith("/chat/completions")]) == 6
