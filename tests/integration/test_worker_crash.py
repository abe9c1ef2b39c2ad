"""A worker killed mid-task loses nothing: the job row stays `running` until its lease runs out
(no worker renews it), the sweep puts it back in the queue, and another worker finishes it. Real
`celery worker` processes, SIGKILLed."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from config.celery import app
from invocations import services as invocation_services
from invocations import sweep
from invocations.models import Invocation
from providers import services
from providers.models import JobStatus
from tenants.principals import Principal
from tests.fakes.openai_server import OpenAIFake
from tests.jobs import start_worker_process

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.processes


def _wait_status(pk: int, wanted: set[str], seconds: float = 20) -> Invocation:
    deadline = time.monotonic() + seconds
    while (invocation := Invocation.objects.get(pk=pk)).status not in wanted:
        assert time.monotonic() < deadline, invocation.status
        time.sleep(0.05)
    return invocation


@pytest.mark.django_db(transaction=True)
def test_a_job_survives_its_worker_being_killed(tenant) -> None:
    with OpenAIFake(api_key="sk-crash-test-0001") as fake:
        services.credential_create(
            tenant=tenant,
            provider="openai",
            name="main",
            values={"openai_api_key": "sk-crash-test-0001", "openai_api_base": fake.url},
            actor=None,
        )
        app.control.purge()  # only the job below goes to the workers
        first = start_worker_process("doomed", JOB_LEASE_SECONDS="1")
        try:
            fake.fail("slow", seconds=5)  # the first call hangs: time to kill its worker
            invocation, _ = invocation_services.invocation_create(
                principal=Principal(tenant=tenant, perms=frozenset()),
                model_type="llm",
                provider="openai",
                model="gpt-4o-mini",
                request={"messages": [{"role": "user", "content": "survive this"}]},
            )
            _wait_status(invocation.pk, {JobStatus.RUNNING})
            time.sleep(0.3)  # the worker is inside the call to the backend
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        assert Invocation.objects.get(pk=invocation.pk).status == JobStatus.RUNNING

        time.sleep(1.1)  # no worker renews the job's lease: it runs out
        assert sweep.sweep_stuck_jobs()["requeued"] == 1
        second = start_worker_process("rescuer")
        try:
            done = _wait_status(invocation.pk, {JobStatus.SUCCEEDED, JobStatus.FAILED})
        finally:
            second.terminate()
            second.wait(10)
    assert done.status == JobStatus.SUCCEEDED, (done.error_code, done.error_message)
    assert done.result["text"] == "You said: survive this"
    assert done.attempts == 2
