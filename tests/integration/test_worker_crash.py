"""A worker killed mid-task loses nothing: the job row stays `running` until its lease runs out
(no worker renews it), the sweep puts it back in the queue, and another worker finishes it. Real
`celery worker` processes, SIGKILLed."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
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


class _ThinkingFake(OpenAIFake):
    """Each answer takes a while, so that a batch is still running when its worker is killed."""

    delay = 0.3

    def chat(self, request):
        time.sleep(self.delay)
        return super().chat(request)


def _calls_per_job(fake: OpenAIFake) -> Counter:
    return Counter(
        request.json()["messages"][0]["content"]
        for request in list(fake.received)
        if request.path.endswith("/chat/completions")
    )


@pytest.mark.django_db(transaction=True)
def test_a_batch_survives_a_worker_killed_in_its_midst(tenant, settings) -> None:
    """BATCH jobs (100; KILL_BATCH_JOBS=n to change) on a real 8-thread worker, SIGKILLed once a
    fifth of them are done; a second worker and the sweep finish the rest. Every job succeeds;
    the backend is called once per job, twice only for the jobs that were inside their call when
    their worker died (their call never answered), never for one that had finished, nor while a
    live worker ran it. Prints its figures (`-s`)."""
    batch = int(os.environ.get("KILL_BATCH_JOBS", "100"))
    settings.JOB_LEASE_SECONDS = 1.0  # the sweep here reads the test process's settings
    settings.JOB_QUEUED_TIMEOUT = 2  # messages the dead worker had taken are re-sent soon
    principal = Principal(tenant=tenant, perms=frozenset())
    with _ThinkingFake(api_key="sk-crash-batch-0002") as fake:
        services.credential_create(
            tenant=tenant,
            provider="openai",
            name="main",
            values={"openai_api_key": "sk-crash-batch-0002", "openai_api_base": fake.url},
            actor=None,
        )
        app.control.purge()
        started = time.monotonic()
        first = start_worker_process("doomed", threads=8, JOB_LEASE_SECONDS="1")
        try:
            ids = [
                invocation_services.invocation_create(
                    principal=principal,
                    model_type="llm",
                    provider="openai",
                    model="gpt-4o-mini",
                    request={"messages": [{"role": "user", "content": f"job {n}"}]},
                )[0].pk
                for n in range(batch)
            ]
            deadline = time.monotonic() + 60
            while _count(ids, JobStatus.SUCCEEDED) < batch // 5:
                assert time.monotonic() < deadline, "the first worker did not get going"
                time.sleep(0.02)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        time.sleep(0.5)  # calls the dead worker had sent reach the fake
        at_kill = dict(Invocation.objects.filter(pk__in=ids).values_list("pk", "status"))
        done_before = {pk for pk, status in at_kill.items() if status == JobStatus.SUCCEEDED}
        running_at_kill = {pk for pk, status in at_kill.items() if status == JobStatus.RUNNING}
        calls_before = _calls_per_job(fake)

        second = start_worker_process("rescuer", threads=8, JOB_LEASE_SECONDS="1")
        requeued = 0
        try:
            deadline = time.monotonic() + 90
            while _count(ids, JobStatus.SUCCEEDED, JobStatus.FAILED) < batch:
                assert time.monotonic() < deadline, Counter(at_kill.values())
                requeued += sweep.sweep_stuck_jobs()["requeued"]  # what beat does every minute
                time.sleep(0.3)
        finally:
            second.terminate()
            second.wait(10)
        took = time.monotonic() - started

    rows = {row.pk: row for row in Invocation.objects.filter(pk__in=ids)}
    calls = _calls_per_job(fake)
    by_job = {pk: calls[f"job {n}"] for n, pk in enumerate(ids)}
    lost = [pk for pk, row in rows.items() if row.status != JobStatus.SUCCEEDED]
    twice = {pk for pk, count in by_job.items() if count > 1}
    rerun_after_done = {pk for pk in done_before if by_job[pk] > 1}
    print(
        f"\n{batch} jobs, a worker SIGKILLed after {len(done_before)} were done, "
        f"{len(running_at_kill)} running, {batch - len(done_before) - len(running_at_kill)} "
        f"queued; a second worker and {requeued} re-sends by the sweep finished the rest in "
        f"{took:.1f} s.\n"
        f"  lost (not succeeded): {len(lost)}\n"
        f"  backend calls: {sum(by_job.values())} for {batch} jobs; called twice: {len(twice)} "
        f"(the jobs inside their call at the kill: {len(running_at_kill)}), more than twice: "
        f"{sum(1 for c in by_job.values() if c > 2)}\n"
        f"  a finished job run again: {len(rerun_after_done)}; calls made before the kill: "
        f"{sum(calls_before.values())}"
    )
    assert lost == []
    assert all(count >= 1 for count in by_job.values())
    assert rerun_after_done == set()
    # Only a job whose worker died inside its call is called again, and only once more.
    assert twice <= running_at_kill, (twice - running_at_kill, at_kill)
    assert max(by_job.values()) <= 2
    # Every call was a claim of the job (a claim whose worker died before calling has no call).
    assert all(rows[pk].attempts >= by_job[pk] for pk in ids), "a call without a claim"


def _count(ids: list[int], *statuses: str) -> int:
    return Invocation.objects.filter(pk__in=ids, status__in=statuses).count()
