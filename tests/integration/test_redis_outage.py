"""Redis stopped for a while loses no accepted job and answers no 500: an invocation the queue
cannot take is taken back and answered 503 JSON (with Retry-After), so the client's retry with
the same idempotency key, once Redis is back, makes exactly one job, which runs. Real gunicorn and
Celery worker processes on a Redis of their own, which the test stops and starts again."""

from __future__ import annotations

import signal
import time

import httpx
import kombu
import kombu.exceptions
import pytest
from django.conf import settings
from django.test import override_settings

from invocations.models import Invocation
from providers import services, validation
from providers.models import JobStatus, ValidationJob
from tenants import services as tenant_services
from tests.fakes.openai_server import OpenAIFake
from tests.jobs import free_port, start_redis, start_web_process, start_worker_process

KEY = "sk-outage-test-0001"


def _submit(client: httpx.Client, web: str, key: str, text: str) -> httpx.Response:
    return client.post(
        f"{web}/api/v1/invocations",
        json={
            "model_type": "llm",
            "provider": "openai",
            "model": "gpt-4o-mini",
            "input": {"messages": [{"role": "user", "content": text}]},
            "idempotency_key": text,
        },
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def _use_openai(tenant, fake: OpenAIFake) -> None:
    services.credential_create(
        tenant=tenant,
        provider="openai",
        name="main",
        values={"openai_api_key": KEY, "openai_api_base": fake.url},
        actor=None,
    )


def _all_done(pks: list[int], seconds: float = 30) -> list[Invocation]:
    deadline = time.monotonic() + seconds
    while True:
        rows = list(Invocation.objects.filter(pk__in=pks))
        if all(r.status in {JobStatus.SUCCEEDED, JobStatus.FAILED} for r in rows):
            return rows
        assert time.monotonic() < deadline, [r.status for r in rows]
        time.sleep(0.1)


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_redis_outage_loses_no_job_and_answers_503_json(tenant) -> None:
    port = free_port()
    redis_dir = settings.DATA_DIR / f"redis-{port}"
    url = f"redis://127.0.0.1:{port}/0"
    redis_server = start_redis(port, redis_dir)
    _, raw = tenant_services.api_key_create(tenant=tenant, name="outage", scopes=["invoke", "read"])
    with OpenAIFake(api_key=KEY) as fake, httpx.Client() as client:
        _use_openai(tenant, fake)
        web, base = start_web_process(REDIS_URL=url)
        worker = start_worker_process("outage", REDIS_URL=url)
        try:
            before = _submit(client, base, raw, "before the outage")
            assert before.status_code == 202, before.text

            redis_server.terminate()
            redis_server.wait(10)
            during = [_submit(client, base, raw, f"during the outage {n}") for n in range(5)]
            for response in during:
                assert response.status_code == 503, response.text
                assert response.headers["content-type"].startswith("application/json")
                assert response.json()["error"]["code"] == "unavailable"
                assert int(response.headers["Retry-After"]) > 0
            taken_back = Invocation.objects.filter(idempotency_key__startswith="during")
            assert not taken_back.exists()  # nothing accepted, nothing left queued

            redis_server = start_redis(port, redis_dir)
            retried = [_submit(client, base, raw, f"during the outage {n}") for n in range(5)]
            assert [r.status_code for r in retried] == [202] * 5, [r.text for r in retried]
            again = _submit(client, base, raw, "during the outage 0")  # the same key once more
            assert again.status_code == 200
            assert again.json()["id"] == retried[0].json()["id"]

            pks = [before.json()["id"]] + [r.json()["id"] for r in retried]
            rows = _all_done(pks)
        finally:
            for process in (worker, web):
                process.terminate()
                process.wait(10)
            redis_server.terminate()
            redis_server.wait(10)
    assert sorted(r.status for r in rows) == [JobStatus.SUCCEEDED] * 6
    assert all(r.attempts == 1 for r in rows)
    chats = [r for r in fake.received if r.path.endswith("/chat/completions")]
    assert len(chats) == 6  # each accepted job called the backend once
    assert "Traceback" not in web.log.read_text()


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_hung_redis_holds_no_request(tenant) -> None:
    """A Redis that stops answering without refusing (SIGSTOP: connections open, no replies) must
    not hold a request that publishes a job: the broker's socket timeouts end the wait, the job
    is taken back and the client gets its 503 JSON; once Redis answers again the same key works."""
    port = free_port()
    redis_dir = settings.DATA_DIR / f"redis-{port}"
    redis_server = start_redis(port, redis_dir)
    _, raw = tenant_services.api_key_create(tenant=tenant, name="hung", scopes=["invoke", "read"])
    with OpenAIFake(api_key=KEY) as fake, httpx.Client() as client:
        _use_openai(tenant, fake)
        web, base = start_web_process(REDIS_URL=f"redis://127.0.0.1:{port}/0")
        try:
            before = _submit(client, base, raw, "before the hang")  # the broker connection is open
            assert before.status_code == 202, before.text
            redis_server.send_signal(signal.SIGSTOP)
            try:
                started = time.monotonic()
                during = _submit(client, base, raw, "during the hang")
                waited = time.monotonic() - started
            finally:
                redis_server.send_signal(signal.SIGCONT)
            assert during.status_code == 503, during.text
            assert during.headers["content-type"].startswith("application/json")
            assert during.json()["error"]["code"] == "unavailable"
            assert waited < 12, waited  # the broker's 5 s timeout, no retries (was 28 s)
            assert not Invocation.objects.filter(idempotency_key="during the hang").exists()
            after = _submit(client, base, raw, "during the hang")
            assert after.status_code == 202, after.text
        finally:
            web.terminate()
            web.wait(10)
            redis_server.terminate()
            redis_server.wait(10)
    assert "Traceback" not in web.log.read_text()


@pytest.mark.django_db(transaction=True)
def test_a_credential_saved_while_the_queue_is_away_is_kept_and_checked_later(
    key_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check is the save's side effect: the save stands (201), its job row waits queued, and the
    sweep sends it once the queue is back (the database row is the outbox)."""
    client = key_client()

    def refuse(*args, **kwargs):
        raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6379.")

    with monkeypatch.context() as away:
        away.setattr(kombu.Producer, "publish", refuse)  # the broker, as Redis being down makes it
        response = client.post(
            "/api/v1/model-providers/openai/credentials",
            {"name": "main", "credentials": {"openai_api_key": "sk-outage-check-0001"}},
            format="json",
        )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "validating"
    job = ValidationJob.objects.get()
    assert job.status == JobStatus.QUEUED
    with override_settings(JOB_QUEUED_TIMEOUT=0):
        assert validation.sweep_stuck_validations() == {"requeued": 1, "failed": 0}
