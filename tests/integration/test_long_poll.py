"""Long-polling cannot starve a web process: at most LONG_POLL_MAX_WAITERS requests of a process
wait (`?wait=N`) at once; the rest answer at once, and other requests still get threads. A real
gunicorn (gthread, as scripts/run serves), with a job no worker runs."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from config.celery import app
from providers import services
from tenants import services as tenant_services
from tests.fakes.openai_server import OpenAIFake
from tests.jobs import start_web_process

KEY = "sk-long-poll-test-0001"


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_waiting_requests_leave_threads_for_the_others(tenant) -> None:
    _, raw = tenant_services.api_key_create(tenant=tenant, name="poll", scopes=["invoke", "read"])
    headers = {"Authorization": f"Bearer {raw}"}
    with OpenAIFake(api_key=KEY) as fake:
        services.credential_create(
            tenant=tenant,
            provider="openai",
            name="main",
            values={"openai_api_key": KEY, "openai_api_base": fake.url},
            actor=None,
        )
        web, base = start_web_process(threads=4, LONG_POLL_MAX_WAITERS="2")
        try:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                queued = client.post(
                    "/api/v1/invocations",
                    json={
                        "model_type": "llm",
                        "input": {"messages": [{"role": "user", "content": "x"}]},
                    },
                )
                assert queued.status_code == 202, queued.text
                job = f"/api/v1/invocations/{queued.json()['id']}"

                def wait_for_it(_: int) -> tuple[float, int]:
                    started = time.monotonic()
                    with httpx.Client(base_url=base, headers=headers, timeout=30) as own:
                        answer = own.get(job, params={"wait": 6})
                    return time.monotonic() - started, answer.status_code

                with ThreadPoolExecutor(6) as pool:
                    waits = pool.map(wait_for_it, range(6))
                    time.sleep(1)  # all six are in; the web process has four threads
                    started = time.monotonic()
                    other = client.get(job)
                    answered_in = time.monotonic() - started
                    waits = list(waits)
        finally:
            web.terminate()
            web.wait(10)
            app.control.purge()  # the job nobody ran
    assert other.status_code == 200
    assert answered_in < 2, answered_in  # without the cap: ~5 s, behind four waiting requests
    assert sorted(code for _, code in waits) == [200] * 6
    held = sorted(seconds for seconds, _ in waits)
    assert all(s < 2 for s in held[:4])  # answered at once: still queued, ask again
    assert all(s > 5 for s in held[4:])  # two waited their six seconds
