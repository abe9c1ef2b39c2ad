"""The routed call path: load balancing that really routes (weighted round robin whose position
every process shares), cool-downs shared across processes, fallbacks, settings changes seen by the
very next call in another process, and a warm call that makes no database query.

"Another process" is a real `celery worker` process; this test process calls the routing module
as the web tier (and the gateway) does. Backends are OpenAI fakes that check the key they get."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config import errors
from config.celery import app
from invocations import services as invocation_services
from invocations.models import Invocation
from providers import balancing, routing, selectors, services
from providers.models import JobStatus, LoadBalancingEntry
from providers.runtime import base as rt
from tenants.principals import Principal
from tests.fakes.openai_server import OpenAIFake
from tests.jobs import finished, start_worker_process

pytestmark = pytest.mark.django_db(transaction=True)
MODEL = "gpt-4o-mini"
KEY_A, KEY_B, KEY_C = "sk-route-a-000000001", "sk-route-b-000000002", "sk-route-c-000000003"


@pytest.fixture
def fakes() -> Iterator[tuple[OpenAIFake, OpenAIFake, OpenAIFake]]:
    with (
        OpenAIFake(api_key=KEY_A) as a,
        OpenAIFake(api_key=KEY_B) as b,
        OpenAIFake(api_key=KEY_C, models={"backup-chat": "llm", "backup-two": "llm"}) as c,
    ):
        yield a, b, c


def _view(tenant, provider="openai", model=MODEL):
    return selectors.model_get(
        tenant=tenant, provider=provider, model_key=selectors.model_id("llm", model)
    )


@pytest.fixture
def balanced(tenant, fakes):
    """gpt-4o-mini with its own credentials (fake A, weight 1) and an entry (fake B, weight 2)."""
    a, b, _ = fakes
    services.credential_create(
        tenant=tenant,
        provider="openai",
        name="main",
        values={"openai_api_key": KEY_A, "openai_api_base": a.url},
        actor=None,
    )
    services.model_setting_update(
        tenant=tenant, view=_view(tenant), load_balancing_enabled=True, actor=None
    )
    services.lb_entry_create(
        tenant=tenant,
        view=_view(tenant),
        name="second key",
        credential_id=None,
        values={"openai_api_key": KEY_B, "openai_api_base": b.url},
        weight=2,
        enabled=True,
        actor=None,
    )
    return tenant


def _chat(text: str):
    request = rt.ChatRequest(messages=(rt.Message("user", text),))
    return lambda adapter, model: adapter.chat(model, request)


def _direct(tenant, text: str = "hi") -> routing.Served:
    """One call as the web tier makes it."""
    found = routing.route(tenant_id=tenant.pk, provider="openai", model_type="llm", model=MODEL)
    return routing.call(found, _chat(text))


def _queue(tenant, text: str = "hi") -> Invocation:
    invocation, _ = invocation_services.invocation_create(
        principal=Principal(tenant=tenant, perms=frozenset()),
        model_type="llm",
        provider="openai",
        model=MODEL,
        request={"messages": [{"role": "user", "content": text}]},
    )
    return invocation


def _finished(pk: int, seconds: float = 20) -> Invocation:
    deadline = time.monotonic() + seconds
    while (invocation := Invocation.objects.get(pk=pk)).status not in {
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
    }:
        assert time.monotonic() < deadline, invocation.status
        time.sleep(0.02)
    return invocation


def _chats(fake: OpenAIFake) -> int:
    return sum(1 for r in fake.received if r.path == "/v1/chat/completions")


@pytest.fixture
def worker():
    app.control.purge()
    process = start_worker_process("router")
    yield process
    process.terminate()
    process.wait(10)


def test_weighted_round_robin_is_shared_by_the_web_tier_and_a_worker_process(
    balanced, fakes, worker
) -> None:
    a, b, _ = fakes
    served: Counter[str] = Counter()
    for i in range(15):
        served[_direct(balanced, f"web {i}").entry.label] += 1
        job = _finished(_queue(balanced, f"job {i}").pk)
        assert job.status == JobStatus.SUCCEEDED, job.error_message
        served[job.served_by] += 1
    # 30 calls from two processes, one shared position: exactly 1:2, as the weights say.
    assert served == {routing.OWN: 10, "second key": 20}
    assert (_chats(a), _chats(b)) == (10, 20)
    job = Invocation.objects.filter(served_by="second key").first()
    assert job.lb_entry is not None
    assert job.lb_entry.name == "second key"
    assert (job.answered_provider, job.answered_model) == ("openai", MODEL)


def test_a_429_storm_on_one_entry_moves_every_call_to_the_other(balanced, fakes, worker) -> None:
    a, _b, _ = fakes
    a.fail("429", times=1000, retry_after=0)
    outcomes = [_direct(balanced, f"web {i}").entry.label for i in range(6)]
    jobs = [_finished(_queue(balanced, f"job {i}").pk) for i in range(6)]

    assert outcomes == ["second key"] * 6
    assert {(j.status, j.served_by) for j in jobs} == {(JobStatus.SUCCEEDED, "second key")}
    # A answered 429 once; cooled (shared through Redis), neither process sent it anything more.
    assert _chats(a) == 1
    route = routing.route(tenant_id=balanced.pk, provider="openai", model_type="llm", model=MODEL)
    cooling = balancing.cooldowns(balanced.pk, [e.key for e in route.entries])
    own = route.entries[0]
    assert own.label == routing.OWN
    assert list(cooling) == [own.key]
    assert cooling[own.key].reason == "rate_limit"
    assert 50 < cooling[own.key].seconds_left <= 60


def test_the_cool_down_shows_in_the_api_with_its_reason_and_end(
    balanced, fakes, key_client
) -> None:
    _a, b, _ = fakes
    b.fail("500", times=10)
    for i in range(3):  # whichever entry comes first, B fails once and rests
        assert _direct(balanced, f"call {i}").entry.label == routing.OWN
    view = _view(balanced)
    listed = key_client().get(f"/api/v1/model-providers/openai/models/{view.id}/load-balancing")
    entry = listed.json()[0]
    assert entry["cooldown_reason"] == "server_unavailable"
    assert entry["cooldown_until"] is not None
    assert _chats(b) == 1
    model_url = f"/api/v1/model-providers/openai/models/{view.id}"
    resting = key_client().get(model_url).json()
    assert (resting["cooldown_reason"], resting["cooldown_until"]) == (None, None)


def test_the_models_own_credentials_show_their_cool_down_too(
    balanced, fakes, key_client, session_client
) -> None:
    """The model's own credentials are one entry of its rotation: when they rest, the model says
    so in the API (cooldown_reason/until) and the load-balancing dialog's first row."""
    a, _b, _ = fakes
    a.fail("429", times=10, retry_after=0)
    for i in range(3):  # whichever comes first, A answers 429 once and rests
        assert _direct(balanced, f"call {i}").entry.label == "second key"
    view = _view(balanced)
    shown = key_client().get(f"/api/v1/model-providers/openai/models/{view.id}").json()
    assert shown["cooldown_reason"] == "rate_limit"
    listed = key_client().get("/api/v1/model-providers/openai/models").json()
    assert (
        next(m for m in listed if m["id"] == view.id)["cooldown_until"] == shown["cooldown_until"]
    )
    page = session_client(balanced, "owner").get(
        f"/settings/model-providers/openai/models/{view.id}/load-balancing"
    )
    own_row = page.content.decode().split('data-entry="own"')[1].split("</tr>")[0]
    assert "Rate limited" in own_row  # the reason, in words (issue 13 item 4)
    assert "until" in own_row


def test_when_every_entry_is_cooling_the_call_is_refused_with_when_to_retry(
    balanced, fakes
) -> None:
    a, b, _ = fakes
    a.fail("500", times=10)
    b.fail("500", times=10)
    with pytest.raises(errors.UpstreamUnavailable):
        _direct(balanced)
    with pytest.raises(errors.AllEntriesCooling) as caught:
        _direct(balanced)
    assert caught.value.http_status == 429
    assert 0 < caught.value.retry_after <= 10
    assert _chats(a) + _chats(b) == 2  # each tried once, then left alone


def test_the_fallback_answers_when_every_entry_fails(balanced, fakes, worker) -> None:
    a, b, c = fakes
    backup = services.custom_model_create(
        tenant=balanced,
        provider="openai_api_compatible",
        model="backup-chat",
        model_type="llm",
        values={"endpoint_url": f"{c.url}/v1", "api_key": KEY_C},
        actor=None,
    )
    deadline = time.monotonic() + 20
    while type(backup).objects.get(pk=backup.pk).status != "valid":  # its check, in the worker
        assert time.monotonic() < deadline
        time.sleep(0.05)
    probes = _chats(c)
    services.model_setting_update(
        tenant=balanced,
        view=_view(balanced),
        fallbacks=[{"provider": "openai_api_compatible", "model": "backup-chat"}],
        actor=None,
    )
    a.fail("500", times=1000)
    b.fail("500", times=1000)
    job = _finished(_queue(balanced, "anyone there?").pk)
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert job.result["text"] == "You said: anyone there?"
    assert (job.answered_provider, job.answered_model) == ("openai_api_compatible", "backup-chat")
    assert (job.provider, job.model) == ("openai", MODEL)
    assert (_chats(a), _chats(b), _chats(c) - probes) == (1, 1, 1)


def test_a_disabled_fallback_is_passed_over_and_a_cycle_is_not_followed(balanced, fakes) -> None:
    """Fallbacks are one level deep: a fallback's own chain (here, back to the first model) is
    not followed, so a cycle cannot loop; a fallback that cannot be called now (disabled) is
    passed over, the next one answers."""
    a, b, c = fakes
    for name in ("backup-two", "backup-chat"):
        services.custom_model_create(
            tenant=balanced,
            provider="openai_api_compatible",
            model=name,
            model_type="llm",
            values={"endpoint_url": f"{c.url}/v1", "api_key": KEY_C},
            actor=None,
        )
    backup = _view(balanced, "openai_api_compatible", "backup-chat")
    services.model_setting_update(
        tenant=balanced,
        view=backup,
        fallbacks=[{"provider": "openai", "model": MODEL}],
        actor=None,
    )
    services.model_setting_update(
        tenant=balanced,
        view=_view(balanced),
        fallbacks=[
            {"provider": "openai_api_compatible", "model": "backup-two"},
            {"provider": "openai_api_compatible", "model": "backup-chat"},
        ],
        actor=None,
    )
    services.model_setting_update(
        tenant=balanced,
        view=_view(balanced, "openai_api_compatible", "backup-two"),
        enabled=False,
        actor=None,
    )
    a.fail("500", times=1000)
    b.fail("500", times=1000)
    served = _direct(balanced, "round and round")
    assert (served.route.provider, served.route.model) == ("openai_api_compatible", "backup-chat")
    assert served.value.text == "You said: round and round"
    assert (_chats(a), _chats(b)) == (1, 1)
    c.fail("500", times=1000)
    with pytest.raises(errors.UpstreamUnavailable):
        _direct(balanced, "everyone down")  # ends: the cycle back to the first model is not taken


def test_a_bad_request_is_not_retried_elsewhere(balanced, fakes) -> None:
    a, b, _ = fakes
    bad = rt.ChatRequest(messages=(rt.Message("user", "x"),), parameters={"model": "other"})
    with pytest.raises(errors.UpstreamError):
        routing.call(
            routing.route(tenant_id=balanced.pk, provider="openai", model_type="llm", model=MODEL),
            lambda adapter, model: adapter.chat("no-such-model", bad),
        )
    assert _chats(a) + _chats(b) == 1


def test_fallbacks_are_checked_when_set(balanced, key_client) -> None:
    view = _view(balanced)
    response = key_client().patch(
        f"/api/v1/model-providers/openai/models/{view.id}",
        {"fallbacks": [{"provider": "openai", "model": MODEL}, {"provider": "x", "model": "y"}]},
        format="json",
    )
    assert response.status_code == 400
    problems = response.json()["error"]["fields"]["fallbacks"]
    assert problems[0] == "#1: a model cannot fall back to itself."
    assert "no llm model x/y" in problems[1]
    ok = key_client().patch(
        f"/api/v1/model-providers/openai/models/{view.id}",
        {"fallbacks": [{"provider": "openai", "model": "gpt-4o"}]},
        format="json",
    )
    assert ok.status_code == 200, ok.content
    assert ok.json()["fallbacks"] == [{"provider": "openai", "model": "gpt-4o"}]


def test_a_changed_key_is_used_by_the_very_next_call_in_another_process(
    tenant, fakes, worker
) -> None:
    a, _, _ = fakes
    credential = services.credential_create(
        tenant=tenant,
        provider="openai",
        name="main",
        values={"openai_api_key": KEY_A, "openai_api_base": a.url},
        actor=None,
    )
    first = _finished(_queue(tenant, "before").pk)
    assert first.status == JobStatus.SUCCEEDED, first.error_message  # the worker's route is warm

    a.api_key = "sk-rotated-key-0000000004"  # the provider rotated the key...
    services.credential_update(  # ...and so did the workspace
        credential=credential,
        values={"openai_api_key": a.api_key, "openai_api_base": a.url},
        partial=False,
        actor=None,
    )
    second = _finished(_queue(tenant, "after").pk)
    assert second.status == JobStatus.SUCCEEDED, second.error_message
    asked = [r for r in a.received if r.json() and "after" in str(r.json().get("messages"))]
    assert [r.header("authorization") for r in asked] == [f"Bearer {a.api_key}"]


def test_a_warm_call_makes_no_database_query(balanced, fakes) -> None:
    first = _direct(balanced, "warm up")
    with CaptureQueriesContext(connection) as queries:
        for i in range(4):
            again = _direct(balanced, f"call {i}")
    assert list(queries) == []
    route = routing.route(tenant_id=balanced.pk, provider="openai", model_type="llm", model=MODEL)
    assert again.route is route
    assert first.route is route
    assert route.balanced
    assert len(route.entries) == 2


def test_names_for_the_gateway_are_cached_like_routes(balanced) -> None:
    """A call by alias or by `default` looks its model up without a query on a warm process; a
    new alias is seen at once."""
    assert routing.names(balanced).defaults["llm"][0] == "openai"
    with CaptureQueriesContext(connection) as queries:
        warm = routing.names(balanced)
    assert list(queries) == []
    services.model_setting_update(tenant=balanced, view=_view(balanced), alias="ours", actor=None)
    assert routing.names(balanced) is not warm
    assert routing.names(balanced).aliases["ours"] == ("openai", "llm", MODEL)


def test_an_entry_that_failed_its_check_is_checked_again_and_rejoins(
    balanced, fakes, key_client, worker
) -> None:
    """An entry whose key was wrong sits out of the rotation; once fixed at the backend, a check
    (POST …/load-balancing/{id}/validate) brings it back."""
    entry = LoadBalancingEntry.objects.get()
    LoadBalancingEntry.objects.filter(pk=entry.pk).update(status="invalid")
    entry.save(update_fields=["updated_at"])  # as every write does: routes are rebuilt
    assert {_direct(balanced, f"a{i}").entry.label for i in range(3)} == {routing.OWN}
    client = key_client()
    url = f"/api/v1/model-providers/openai/models/{_view(balanced).id}/load-balancing/{entry.pk}"
    job = client.post(f"{url}/validate")
    assert job.status_code == 202, job.content
    assert finished(client, f"/api/v1/validations/{job.json()['id']}")["status"] == "succeeded"
    assert client.get(url).json()["status"] == "valid"
    assert "second key" in {_direct(balanced, f"b{i}").entry.label for i in range(3)}
    other = key_client(scopes=["read"])
    assert other.post(f"{url}/validate").status_code == 403


def test_the_dialog_checks_an_entry_again(balanced, fakes, session_client, worker) -> None:
    """The load-balancing dialog's "Check again" queues the entry's check, shows it being
    checked (and polls), and the entry comes back valid and in the rotation."""
    entry = LoadBalancingEntry.objects.get()
    LoadBalancingEntry.objects.filter(pk=entry.pk).update(status="invalid")
    entry.save(update_fields=["updated_at"])
    key = balancing.lb_entry_key(entry.pk)
    balancing.cool_down(balanced.pk, key, reason="server_unavailable", seconds=60)
    owner = session_client(balanced, "owner")
    url = f"/settings/model-providers/openai/models/{_view(balanced).id}/load-balancing"
    assert 'value="validate"' in owner.get(url).content.decode()
    checking = owner.post(url, {"action": "validate", "entry": entry.pk}).content.decode()
    assert 'hx-trigger="every 1s"' in checking
    deadline = time.monotonic() + 20
    while LoadBalancingEntry.objects.get().status == "validating":
        assert time.monotonic() < deadline, "the check did not end"
        time.sleep(0.1)
    assert LoadBalancingEntry.objects.get().status == "valid"
    assert balancing.cooldowns(balanced.pk, [key]) == {}  # working again: no longer resting
    assert 'hx-trigger="every 1s"' not in owner.get(url).content.decode()
    assert "second key" in {_direct(balanced, f"c{i}").entry.label for i in range(3)}
    viewer = session_client(balanced, "member")
    assert viewer.post(url, {"action": "validate", "entry": entry.pk}).status_code == 403


def test_a_failing_fallback_is_tried_once_then_rested(balanced, fakes) -> None:
    """With fallbacks to go to, a failing backend is tried once (no retries with back-off) and
    rested: while it rests, calls go straight past it. A 429 rests only the model it was for."""
    a, b, c = fakes
    services.custom_model_create(
        tenant=balanced,
        provider="openai_api_compatible",
        model="backup-chat",
        model_type="llm",
        values={"endpoint_url": f"{c.url}/v1", "api_key": KEY_C},
        actor=None,
    )
    services.model_setting_update(
        tenant=balanced,
        view=_view(balanced),
        fallbacks=[
            {"provider": "openai", "model": "gpt-4o"},  # fake A too: failing
            {"provider": "openai_api_compatible", "model": "backup-chat"},
        ],
        actor=None,
    )
    a.fail("500", times=1000)
    b.fail("500", times=1000)
    started = time.monotonic()
    served = _direct(balanced, "first")
    assert (served.route.model, served.value.text) == ("backup-chat", "You said: first")
    assert time.monotonic() - started < 1.0  # no back-off between retries
    assert (_chats(a), _chats(b)) == (2, 1)  # gpt-4o-mini's own, gpt-4o; the entry: once each
    assert _direct(balanced, "second").route.model == "backup-chat"
    assert (_chats(a), _chats(b)) == (2, 1)  # everything failing rests: not asked again
    resting = {
        m.model: m.cooldown for m in selectors.provider_models(tenant=balanced, provider="openai")
    }
    assert resting["gpt-4o"].reason == "server_unavailable"
    assert resting["gpt-4o-mini"].reason == "server_unavailable"
    assert resting["gpt-4.1"] is None  # same credential, another model: not rested
