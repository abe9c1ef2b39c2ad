"""Invocation requests are checked before anything is queued; disabled or unconfigured models are
a clear 409; lost jobs are swept back into the queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from invocations import sweep
from invocations.models import Invocation
from providers import selectors, services
from providers.models import JobStatus, ValidationJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(tenant, key_client):
    services.credential_create(
        tenant=tenant,
        provider="openai",
        name="main",
        values={"openai_api_key": "sk-test-000000000000"},
        actor=None,
    )
    return key_client()


def post(client, body):
    return client.post("/api/v1/invocations", body, format="json")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model_type": "llm", "input": {}}, "input"),
        ({"model_type": "llm", "input": {"messages": []}}, "input"),
        (
            {"model_type": "llm", "input": {"messages": [{"role": "robot", "content": "x"}]}},
            "input",
        ),
        (
            {
                "model_type": "llm",
                "input": {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
            },
            "input",
        ),
        ({"model_type": "text-embedding", "input": {"texts": []}}, "input"),
        ({"model_type": "rerank", "input": {"query": "q"}}, "input"),
        ({"model_type": "speech2text", "input": {"audio": "%%%not-base64"}}, "input"),
        ({"model_type": "tts", "input": {"text": "hi", "format": "midi"}}, "input"),
        ({"model_type": "image", "input": {}}, "model_type"),
        (
            {
                "model_type": "llm",
                "provider": "openai",
                "input": {"messages": [{"role": "user", "content": "x"}]},
            },
            "model",
        ),
    ],
)
def test_bad_requests_are_400_and_queue_nothing(client, body, field) -> None:
    response = post(client, body)
    assert response.status_code == 400, response.content
    # Nested errors come as paths ("input.messages.0.role"), never as a Python repr.
    fields = response.json()["error"]["fields"]
    assert all(path == field or path.startswith(f"{field}.") for path in fields), fields
    assert not any("ErrorDetail" in m for messages in fields.values() for m in messages)
    assert not Invocation.objects.exists()


def test_disabled_unconfigured_and_unknown_models_are_refused(client, tenant) -> None:
    chat = {"messages": [{"role": "user", "content": "x"}]}
    unconfigured = post(
        client,
        {"model_type": "llm", "provider": "anthropic", "model": "claude-sonnet-4-6", "input": chat},
    )
    assert unconfigured.status_code == 409
    assert unconfigured.json()["error"]["code"] == "not_configured"

    view = selectors.model_get(
        tenant=tenant, provider="openai", model_key=selectors.model_id("llm", "gpt-4o")
    )
    services.model_setting_update(tenant=tenant, view=view, enabled=False, actor=None)
    disabled = post(
        client, {"model_type": "llm", "provider": "openai", "model": "gpt-4o", "input": chat}
    )
    assert disabled.status_code == 409
    assert disabled.json()["error"]["code"] == "model_disabled"

    unknown = post(
        client, {"model_type": "llm", "provider": "openai", "model": "gpt-1", "input": chat}
    )
    assert unknown.status_code == 404
    assert not Invocation.objects.exists()


def test_without_provider_and_model_the_default_is_used(client) -> None:
    response = post(client, {"model_type": "text-embedding", "input": {"texts": ["x"]}})
    assert response.status_code == 202, response.content
    assert (response.json()["provider"], response.json()["model"]) == (
        "openai",
        "text-embedding-3-large",  # the fallback default: first in catalog order
    )
    none = post(client, {"model_type": "rerank", "input": {"query": "q", "documents": ["d"]}})
    assert none.status_code == 409
    assert none.json()["error"]["code"] == "no_model"


def test_another_workspaces_invocations_are_404(client, other_tenant, key_client) -> None:
    created = post(client, {"model_type": "text-embedding", "input": {"texts": ["x"]}}).json()
    outsider = key_client(for_tenant=other_tenant, scopes=["invoke"])
    assert outsider.get(f"/api/v1/invocations/{created['id']}").status_code == 404
    assert outsider.get("/api/v1/invocations").json()["results"] == []
    reader = key_client(scopes=["read"])
    assert reader.post("/api/v1/invocations", {}, format="json").status_code == 403


def test_the_sweep_requeues_lost_jobs_and_gives_up_after_max_attempts(client, settings) -> None:
    created = post(client, {"model_type": "text-embedding", "input": {"texts": ["x"]}}).json()
    long_ago = timezone.now() - timedelta(hours=1)
    Invocation.objects.filter(pk=created["id"]).update(
        status=JobStatus.RUNNING, started_at=long_ago, attempts=1
    )
    hopeless = Invocation.objects.create(
        tenant_id=Invocation.objects.get(pk=created["id"]).tenant_id,
        model_type="llm",
        provider="openai",
        model="gpt-4o",
        status=JobStatus.RUNNING,
        started_at=long_ago,
        attempts=settings.JOB_MAX_ATTEMPTS,
    )
    fresh_job = ValidationJob.objects.latest("created_at")  # queued moments ago: left alone

    assert sweep.sweep_stuck_jobs() == {"requeued": 1, "failed": 1}

    requeued = Invocation.objects.get(pk=created["id"])
    assert requeued.status == JobStatus.QUEUED
    hopeless.refresh_from_db()
    assert (hopeless.status, hopeless.error_code) == (JobStatus.FAILED, "lost")
    fresh_job.refresh_from_db()
    assert fresh_job.status == JobStatus.QUEUED
    assert sweep.sweep_stuck_jobs() == {"requeued": 0, "failed": 0}  # a second sweep is a no-op


@pytest.mark.parametrize("number", ["1e999", "-1e999", "NaN", "Infinity"])
def test_a_number_no_column_can_store_is_a_400_and_nothing_is_queued(client, number) -> None:
    """An earlier invocation exists: the bad one must not be mistaken for its duplicate."""
    first = post(client, {"model_type": "text-embedding", "input": {"texts": ["x"]}})
    assert first.status_code == 202
    body = (
        '{"model_type": "llm", "input": {"messages": [{"role": "user", "content": "hi"}],'
        f' "parameters": {{"temperature": {number}}}}}}}'
    )
    response = client.post("/api/v1/invocations", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "parse_error"
    assert Invocation.objects.count() == 1


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_json_nested_past_the_recursion_limit_is_a_400(client, depth) -> None:
    response = client.post(
        "/api/v1/invocations", "[" * depth + "]" * depth, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_the_written_out_output_equals_what_drf_would_build(tenant):
    """InvocationOutput writes its representation out for speed; it must say exactly what DRF's
    ModelSerializer says from the same fields, for an empty row and a full one."""
    from decimal import Decimal

    from rest_framework import serializers as drf

    from invocations.api import InvocationOutput

    bare = Invocation.objects.create(tenant=tenant, model_type="llm", provider="openai", model="m")
    full = Invocation.objects.create(
        tenant=tenant,
        model_type="tts",
        provider="openai",
        model="tts-1",
        status=JobStatus.SUCCEEDED,
        result={"content_type": "audio/mpeg", "text": "ünïcode"},
        result_file="invocations/1/1.mp3",
        error_code="x",
        error_message="y",
        prompt_tokens=3,
        completion_tokens=4,
        usage_counted=True,
        audio_seconds=1.5,
        characters=12,
        cost=Decimal("0.00001234"),
        currency="USD",
        latency_ms=15,
        ttft_ms=7,
        attempts=2,
        idempotency_key="k-1",
        started_at=timezone.now(),
        finished_at=timezone.now() + timedelta(seconds=1, microseconds=5),
        served_by="entry one",
        answered_provider="openai",
        answered_model="tts-1-hd",
    )
    for row in (bare, full):
        row.refresh_from_db()
        written = InvocationOutput(row).data
        built = drf.ModelSerializer.to_representation(InvocationOutput(row), row)
        assert written == dict(built)
        assert list(written) == list(built)
    assert InvocationOutput([bare, full], many=True).data[1]["cost"] == "0.00001234"


def test_a_lone_surrogate_is_refused_at_the_door(client, key_client) -> None:
    """ "\\ud800" is valid JSON but not text: stored, it would break every response showing it.
    A surrogate pair (an emoji written as two escapes) is text and passes."""
    lone = (
        '{"model_type": "llm", "provider": "openai", "model": "gpt-4o-mini", '
        '"input": {"messages": [{"role": "user", "content": "hi \\ud800"}]}}'
    )
    refused = client.post("/api/v1/invocations", lone, content_type="application/json")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "parse_error"
    assert Invocation.objects.count() == 0
    paired = lone.replace("\\ud800", "\\ud83d\\ude00")
    assert (
        client.post("/api/v1/invocations", paired, content_type="application/json").status_code
        == 202
    )
    assert Invocation.objects.get().request["messages"][0]["content"] == "hi \U0001f600"
    writer = key_client(scopes=["write", "read"])
    credential = (
        '{"name": "x", "credentials": {"openai_api_key": "sk-aaaaaaaaaa", '
        '"openai_organization": "o\\udfff"}}'
    )
    made = writer.post(
        "/api/v1/model-providers/openai/credentials", credential, content_type="application/json"
    )
    assert made.status_code == 400
    assert writer.get("/api/v1/model-providers/openai/credentials").status_code == 200


def test_a_body_too_large_is_a_json_413(client, settings) -> None:
    settings.INVOCATION_MAX_BODY = 1000
    body = {
        "model_type": "llm",
        "input": {"messages": [{"role": "user", "content": "x" * 2000}]},
    }
    response = post(client, body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nope", "/api/v1/invocations/abc", "/api/v1/invocations/-1", "/api/v1/api-keys/x/y"],
)
def test_unknown_api_paths_answer_json_404(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_calls_in_flight_hold_tokens_against_the_per_minute_limit(client, tenant) -> None:
    """A tokens-per-minute limit counts what running calls may still use (their prompt plus
    max_tokens): sixteen calls at once cannot all slip under it before any has finished."""
    import math

    from rest_framework.test import APIClient

    from invocations import codec
    from tenants import services as tenant_services

    _, raw = tenant_services.api_key_create(
        tenant=tenant, name="tpm", scopes=["invoke"], tpm_limit=50
    )
    limited = APIClient()
    limited.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    chat = {
        "messages": [{"role": "user", "content": "count my tokens"}],
        "parameters": {"max_tokens": 5},
    }
    per_call = codec.estimate("llm", chat)
    body = {"model_type": "llm", "provider": "openai", "model": "gpt-4o-mini", "input": chat}
    answers = [post(limited, body) for _ in range(16)]  # no worker: all still queued
    admitted = [a for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code == 429]
    assert len(admitted) == math.ceil(50 / per_call)
    assert len(admitted) + len(refused) == 16
    assert "hold" in refused[0].json()["error"]["message"]
    assert int(refused[0]["Retry-After"]) >= 1


def test_parameters_the_model_does_not_take_are_a_400_and_queue_nothing(client, tenant) -> None:
    """The audit's case: `model` among an enabled model's parameters would have called another
    model at this one's price; `stream`, `messages`, `tools`, `n` would have changed the call."""
    chat = {"role": "user", "content": "x"}
    given = {"model": "gpt-5", "messages": [], "stream": False, "tools": [], "n": 3, "seed": 1}
    response = post(
        client,
        {
            "model_type": "llm",
            "provider": "openai",
            "model": "gpt-4o-mini",
            "input": {"messages": [chat], "parameters": {**given, "max_tokens": 99_999}},
        },
    )
    assert response.status_code == 400, response.content
    fields = response.json()["error"]["fields"]
    assert set(fields) == {f"input.parameters.{name}" for name in [*given, "max_tokens"]}
    assert fields["input.parameters.max_tokens"] == ["Give a number from 1 to 16384."]
    assert not Invocation.objects.exists()

    # The workspace's default model is held to its own rules too.
    default = post(
        client, {"model_type": "llm", "input": {"messages": [chat], "parameters": given}}
    )
    assert default.status_code == 400
    assert not Invocation.objects.exists()


def test_a_custom_model_takes_the_common_sampling_settings(client, tenant) -> None:
    services.custom_model_create(
        tenant=tenant,
        provider="openai",
        model="ft:gpt-4o-mini:acme::abc123",
        model_type="llm",
        values={"openai_api_key": "sk-test-000000000000"},
        actor=None,
    )
    body = {"model_type": "llm", "provider": "openai", "model": "ft:gpt-4o-mini:acme::abc123"}
    chat = [{"role": "user", "content": "x"}]
    common = {"temperature": 1, "top_k": 5, "seed": 3, "stop": ["."], "max_tokens": 20}
    accepted = post(client, {**body, "input": {"messages": chat, "parameters": common}})
    assert accepted.status_code == 202, accepted.content
    assert Invocation.objects.get().request["parameters"] == common
    refused = post(
        client, {**body, "input": {"messages": chat, "parameters": {"model": "gpt-5", "x": 1}}}
    )
    assert refused.status_code == 400
    assert set(refused.json()["error"]["fields"]) == {
        "input.parameters.model",
        "input.parameters.x",
    }
    assert Invocation.objects.count() == 1
