"""No job is left stuck: a bad number never reaches a backend call, anything unexpected inside a
job ends it `failed` with a readable message (and its target invalid), and a validation the
workers lost for good leaves its target invalid ("check again"), never "Validating…" forever."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from invocations import sweep as invocation_sweep
from invocations import tasks
from invocations.models import Invocation
from providers import validation
from providers.models import CheckStatus, CustomModel, JobStatus, ValidationJob
from tests.fakes.xinference_server import XinferenceFake
from tests.integration.test_jobs_self_hosted import add_model, settled
from tests.jobs import finished

pytestmark = pytest.mark.usefixtures("celery_worker_thread")
KEY = "xinf-secret-key-0077"


@pytest.fixture
def xinference():
    with XinferenceFake(api_key=KEY) as server:
        yield server


@pytest.fixture
def client(tenant, key_client):
    return key_client()


def _add_qwen(client, xinference, **extra) -> dict:
    return add_model(
        client,
        "xinference",
        "qwen2.5-instruct",
        "llm",
        server_url=xinference.url,
        model_uid="qwen2.5-instruct",
        api_key=KEY,
        **extra,
    )


def _ask(client, text: str):
    """Queue a chat with the Xinference model."""
    return client.post(
        "/api/v1/invocations",
        {
            "model_type": "llm",
            "provider": "xinference",
            "model": "qwen2.5-instruct",
            "input": {"messages": [{"role": "user", "content": text}]},
        },
        format="json",
    )


@pytest.mark.parametrize(("timeout", "retries"), [("0", "3"), ("999999", "3"), ("60", "11")])
def test_an_out_of_range_timeout_or_retry_count_is_a_field_error(
    client, xinference, timeout, retries
) -> None:
    response = client.post(
        "/api/v1/model-providers/xinference/models",
        {
            "model": "qwen2.5-instruct",
            "model_type": "llm",
            "credentials": {
                "server_url": xinference.url,
                "model_uid": "qwen2.5-instruct",
                "invoke_timeout": timeout,
                "max_retries": retries,
            },
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    fields = response.json()["error"]["fields"]
    assert set(fields) == ({"invoke_timeout"} if retries == "3" else {"max_retries"})
    assert not CustomModel.objects.exists()
    assert xinference.received == []


def test_a_stored_zero_timeout_from_before_the_check_still_works(client, xinference) -> None:
    """Rows saved before forms checked ranges hold "0": calls clamp it instead of crashing."""
    model = settled(client, "xinference", _add_qwen(client, xinference))
    row = CustomModel.objects.get()
    CustomModel.objects.filter(pk=row.pk).update(
        config={**row.config, "invoke_timeout": "0"}, updated_at=timezone.now()
    )
    job = client.post(f"/api/v1/model-providers/xinference/models/{model['id']}/validate").json()
    assert finished(client, f"/api/v1/validations/{job['id']}")["status"] == "succeeded"


BROKEN_KEY = "xinf-secret\nkey-0077"  # a header value requests refuses, quoting it


def _store_raw(row: CustomModel, **values) -> None:
    """What a row written before today's form checks (or edited by hand) may hold."""
    from providers.credentials import CleanedForm, seal

    secrets = {k: v for k, v in values.items() if k == "api_key"}
    plain = {**{k: v for k, v in row.config.items() if k not in row.masked}, **values}
    plain = {k: v for k, v in plain.items() if k not in secrets}
    row.updated_at = timezone.now()
    seal(row, CleanedForm(plain=plain, secrets=secrets, kept=set(row.masked) - set(secrets)))
    row.save()


def test_an_unexpected_failure_ends_the_validation_and_its_target(
    client, xinference, caplog
) -> None:
    """A server URL stored as a list (no form would take it) breaks the adapter with an
    AttributeError, not one of our errors: the job still ends, its target reads invalid, the
    log has the traceback."""
    model = settled(client, "xinference", _add_qwen(client, xinference))
    _store_raw(CustomModel.objects.get(), server_url=[xinference.url])
    received = len(xinference.received)

    with caplog.at_level(logging.ERROR, logger="providers.jobs"):
        job = client.post(f"/api/v1/model-providers/xinference/models/{model['id']}/validate")
        done = finished(client, f"/api/v1/validations/{job.json()['id']}")

    assert (done["status"], done["error_code"]) == ("failed", "internal_error")
    assert done["error_message"].startswith("Something unexpected failed inside the service (")
    assert "AttributeError" in done["error_message"]
    assert len(done["error_message"]) <= 300
    shown = client.get(f"/api/v1/model-providers/xinference/models/{model['id']}").json()
    assert shown["status"] == "invalid"
    assert shown["last_error"] == done["error_message"]
    assert len(xinference.received) == received  # nothing was sent
    assert "Traceback" in caplog.text
    assert KEY not in caplog.text


def test_an_unexpected_failure_ends_the_invocation(client, xinference, tenant) -> None:
    """A stored request the codec cannot read (a tool call without its function) ends the job."""
    settled(client, "xinference", _add_qwen(client, xinference))
    broken = Invocation.objects.create(
        tenant=tenant,
        model_type="llm",
        provider="xinference",
        model="qwen2.5-instruct",
        request={"messages": [{"role": "assistant", "content": "", "tool_calls": [{}]}]},
    )
    tasks.run.delay(broken.pk)
    done = finished(client, f"/api/v1/invocations/{broken.pk}")
    assert (done["status"], done["error_code"]) == ("failed", "internal_error")
    assert "KeyError" in done["error_message"]
    assert done["finished_at"] is not None


def test_a_key_with_a_line_break_from_before_the_check_is_a_clear_error(client, xinference):
    """requests refuses such a header and quotes it: the job says what is wrong, and no part of
    the key shows, in any spelling."""
    model = settled(client, "xinference", _add_qwen(client, xinference))
    _store_raw(CustomModel.objects.get(), api_key=BROKEN_KEY)
    job = client.post(f"/api/v1/model-providers/xinference/models/{model['id']}/validate")
    done = finished(client, f"/api/v1/validations/{job.json()['id']}")
    assert (done["status"], done["error_code"]) == ("failed", "bad_request")
    assert "cannot be sent in an HTTP header" in done["error_message"]
    assert "xinf-secret" not in done["error_message"]
    assert "key-0077" not in done["error_message"]


def test_a_secret_that_no_longer_decrypts_is_a_clear_error(client, xinference) -> None:
    """A restore without its master key, a damaged row: the check ends `credential_unreadable`
    and a call is refused with a 409 before anything is queued."""
    model = settled(client, "xinference", _add_qwen(client, xinference))
    row = CustomModel.objects.get()
    CustomModel.objects.filter(pk=row.pk).update(
        config={**row.config, "api_key": "enc1:not-an-envelope"}, updated_at=timezone.now()
    )
    row.save(update_fields=["updated_at"])  # as any write does: routes are rebuilt
    job = client.post(f"/api/v1/model-providers/xinference/models/{model['id']}/validate")
    done = finished(client, f"/api/v1/validations/{job.json()['id']}")
    assert (done["status"], done["error_code"]) == ("failed", "credential_unreadable")
    assert "enter them again" in done["error_message"]
    refused = _ask(client, "hello")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "credential_unreadable"


def test_control_characters_are_refused_in_form_values(client, xinference) -> None:
    response = client.post(
        "/api/v1/model-providers/xinference/models",
        {
            "model": "qwen2.5-instruct",
            "model_type": "llm",
            "credentials": {
                "server_url": xinference.url,
                "model_uid": "qwen\u0007",
                "api_key": BROKEN_KEY,
            },
        },
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"model_uid", "api_key"}
    # A NUL is refused sooner, by the JSON parser (config/parsers.py), which names where it is.
    response = client.post(
        "/api/v1/model-providers/xinference/models",
        {"model": "m", "model_type": "llm", "credentials": {"model_uid": "qwen\u0000"}},
        format="json",
    )
    assert response.status_code == 400
    assert "credentials.model_uid" in response.json()["error"]["message"]


def test_a_validation_lost_for_good_leaves_its_target_invalid(client, xinference, settings) -> None:
    model = settled(client, "xinference", _add_qwen(client, xinference))
    row = CustomModel.objects.get()
    long_ago = timezone.now() - timedelta(hours=1)
    lost = ValidationJob.objects.create(
        tenant=row.tenant,
        provider="xinference",
        model_type="llm",
        model="qwen2.5-instruct",
        custom_model=row,
        status=JobStatus.RUNNING,
        started_at=long_ago,
        attempts=settings.JOB_MAX_ATTEMPTS,
    )
    CustomModel.objects.filter(pk=row.pk).update(status=CheckStatus.VALIDATING)
    invocation = Invocation.objects.create(
        tenant=row.tenant,
        model_type="llm",
        provider="xinference",
        model="qwen2.5-instruct",
        status=JobStatus.RUNNING,
        started_at=long_ago,
        attempts=settings.JOB_MAX_ATTEMPTS,
    )

    # Each app sweeps its own rows only.
    assert invocation_sweep.sweep_stuck_jobs() == {"requeued": 0, "failed": 1}
    lost.refresh_from_db()
    assert lost.status == JobStatus.RUNNING
    assert validation.sweep_stuck_validations() == {"requeued": 0, "failed": 1}

    lost.refresh_from_db()
    assert (lost.status, lost.error_code) == (JobStatus.FAILED, "lost")
    shown = client.get(f"/api/v1/model-providers/xinference/models/{model['id']}").json()
    assert shown["status"] == "invalid"
    assert shown["last_error"] == "The check was lost; check again."
    invocation.refresh_from_db()
    assert (invocation.status, invocation.error_code) == (JobStatus.FAILED, "lost")
    assert validation.sweep_stuck_validations() == {"requeued": 0, "failed": 0}


def test_a_lost_validation_with_tries_left_is_queued_again_and_ends(client, xinference) -> None:
    model = settled(client, "xinference", _add_qwen(client, xinference))
    row = CustomModel.objects.get()
    stuck = ValidationJob.objects.create(
        tenant=row.tenant,
        provider="xinference",
        model_type="llm",
        model="qwen2.5-instruct",
        custom_model=row,
        status=JobStatus.RUNNING,
        started_at=timezone.now() - timedelta(hours=1),
        attempts=1,
    )
    assert validation.sweep_stuck_validations() == {"requeued": 1, "failed": 0}
    done = finished(client, f"/api/v1/validations/{stuck.pk}")
    assert done["status"] == "succeeded"
    shown = client.get(f"/api/v1/model-providers/xinference/models/{model['id']}").json()
    assert shown["status"] == "valid"


def test_a_waiting_request_is_woken_when_the_job_finishes(client, xinference) -> None:
    """GET ?wait= is woken by the worker through Redis, not by polling the database: it answers
    within milliseconds of the job's end."""
    settled(client, "xinference", _add_qwen(client, xinference))
    lags = []
    for i in range(5):
        xinference.fail("slow", seconds=0.3)
        created = _ask(client, f"wake {i}").json()
        answer = client.get(f"/api/v1/invocations/{created['id']}?wait=10")
        answered_at = timezone.now()
        body = answer.json()
        assert body["status"] == "succeeded", body
        lags.append(answered_at - Invocation.objects.get(pk=created["id"]).finished_at)
    assert max(lags).total_seconds() < 0.05, lags


def test_a_call_can_be_queued_and_answered_in_one_request(client, xinference) -> None:
    """POST ?wait=N holds the request until the job ends (200 with the answer), or answers 202
    with the queued job when it does not end in time; a wait that is not a number is a 400."""
    settled(client, "xinference", _add_qwen(client, xinference))
    body = {
        "model_type": "llm",
        "provider": "xinference",
        "model": "qwen2.5-instruct",
        "input": {"messages": [{"role": "user", "content": "one trip"}]},
    }
    answered = client.post("/api/v1/invocations?wait=10", body, format="json")
    assert answered.status_code == 200, answered.json()
    assert answered.json()["status"] == "succeeded"
    assert answered.json()["result"]["text"] == "You said: one trip"

    xinference.fail("slow", seconds=1.0)
    pending = client.post("/api/v1/invocations?wait=0.2", body, format="json")
    assert pending.status_code == 202
    assert pending.json()["status"] in ("queued", "running")
    assert finished(client, f"/api/v1/invocations/{pending.json()['id']}")["status"] == "succeeded"

    for bad in ("soon", "nan", "NaN"):
        refused = client.post(f"/api/v1/invocations?wait={bad}", body, format="json")
        assert refused.status_code == 400
        assert refused.json()["error"]["fields"] == {"wait": ["Give seconds, e.g. 10."]}
    assert Invocation.objects.count() == 2  # a refused wait queued nothing


def test_a_check_cut_short_by_a_rate_limit_leaves_the_model_usable(client, xinference) -> None:
    """A 429 (or a 5xx, a timeout) says nothing against the credentials: the model stays in
    service, unchecked, with what happened, instead of invalid until someone checks again."""
    xinference.fail("429", times=10, retry_after=0)
    model = settled(client, "xinference", _add_qwen(client, xinference, max_retries="0"))
    assert model["status"] == "unchecked"
    assert model["last_error"].startswith("The check could not finish: 429")
    assert model["usable"] is True
