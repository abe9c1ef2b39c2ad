"""A live job is never run twice; a dead worker's job is. A worker claims a job with a lease that
it renews while the job runs: a second delivery of the task, or the sweep, finds the job running
under a live lease and leaves it alone, whatever time it has taken; once the lease runs out (its
worker died), the job is claimed again."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from config.celery import app
from invocations import services as invocation_services
from invocations import sweep
from invocations.models import Invocation
from providers import jobs, services, validation
from providers.models import JobStatus, ValidationJob
from tenants.principals import Principal
from tests.fakes.openai_server import OpenAIFake

KEY = "sk-lease-test-0001"


@pytest.fixture
def fake(tenant):
    with OpenAIFake(api_key=KEY) as server:
        services.credential_create(
            tenant=tenant,
            provider="openai",
            name="main",
            values={"openai_api_key": KEY, "openai_api_base": server.url},
            actor=None,
        )
        yield server


def _queued(tenant) -> Invocation:
    invocation, _ = invocation_services.invocation_create(
        principal=Principal(tenant=tenant, perms=frozenset()),
        model_type="llm",
        provider="openai",
        model="gpt-4o-mini",
        request={"messages": [{"role": "user", "content": "only once"}]},
    )
    app.control.purge()  # no worker here: the test delivers the task itself
    return invocation


def _chats(fake: OpenAIFake) -> int:
    return sum(r.path.endswith("/chat/completions") for r in fake.received)


@pytest.mark.django_db(transaction=True)
def test_a_live_job_is_not_claimed_twice_and_a_dead_workers_is(tenant, fake) -> None:
    pk = _queued(tenant).pk
    first = invocation_services._claim(pk)
    assert first is not None
    assert first.lease_until > timezone.now()
    assert invocation_services._claim(pk) is None  # a second delivery while it runs

    Invocation.objects.filter(pk=pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    again = invocation_services._claim(pk)  # its worker died: the lease ran out
    assert again is not None
    assert again.attempts == 2


@pytest.mark.django_db(transaction=True)
def test_the_sweep_leaves_a_live_job_alone_however_long_it_runs(tenant, fake) -> None:
    pk = _queued(tenant).pk
    invocation_services._claim(pk)
    Invocation.objects.filter(pk=pk).update(started_at=timezone.now() - timedelta(hours=2))
    with override_settings(JOB_QUEUED_TIMEOUT=0):
        assert sweep.sweep_stuck_jobs() == {"requeued": 0, "failed": 0}
        Invocation.objects.filter(pk=pk).update(lease_until=timezone.now() - timedelta(seconds=1))
        assert sweep.sweep_stuck_jobs() == {"requeued": 1, "failed": 0}
    app.control.purge()
    assert Invocation.objects.get(pk=pk).status == JobStatus.QUEUED


@pytest.mark.django_db(transaction=True)
def test_a_job_run_again_while_it_runs_calls_the_backend_once(tenant, fake) -> None:
    """The audit's case: the job is in its backend call when the task comes again (the sweep's
    re-send, or Redis redelivering it); the second run leaves at once."""
    pk = _queued(tenant).pk
    fake.fail("slow", seconds=1.5)
    running = threading.Thread(
        target=invocation_services.invocation_run, kwargs={"invocation_id": pk}
    )
    running.start()
    deadline = time.monotonic() + 10
    while Invocation.objects.get(pk=pk).status != JobStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with override_settings(JOB_QUEUED_TIMEOUT=0):
        assert sweep.sweep_stuck_jobs()["requeued"] == 0
    invocation_services.invocation_run(invocation_id=pk)  # the task, delivered again
    running.join(10)
    done = Invocation.objects.get(pk=pk)
    assert done.status == JobStatus.SUCCEEDED
    assert done.attempts == 1
    assert _chats(fake) == 1


@pytest.mark.django_db(transaction=True)
def test_a_running_jobs_lease_is_renewed_by_its_process(tenant, fake) -> None:
    pk = _queued(tenant).pk
    with override_settings(JOB_LEASE_SECONDS=0.3):
        invocation_services._claim(pk)
        leases = jobs.Leases()
        with leases.held(Invocation, pk):
            time.sleep(0.7)  # two renewals, each a lease's third apart
            assert Invocation.objects.get(pk=pk).lease_until > timezone.now()
        time.sleep(0.4)  # released: no one renews it any more
        assert Invocation.objects.get(pk=pk).lease_until < timezone.now()
        assert invocation_services._claim(pk) is not None


@pytest.mark.django_db(transaction=True)
def test_a_validation_job_is_claimed_once_per_lease(tenant, fake) -> None:
    credential = services.credential_create(
        tenant=tenant,
        provider="openai",
        name="second",
        values={"openai_api_key": KEY, "openai_api_base": fake.url},
        actor=None,
    )
    app.control.purge()
    job = ValidationJob.objects.filter(credential=credential).latest("created_at")
    assert validation._claim(job)
    assert not validation._claim(job)
    ValidationJob.objects.filter(pk=job.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert validation._claim(job)
