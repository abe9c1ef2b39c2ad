"""Invocations: accept a model call as a job, run it in a worker, record result, usage and cost.

`invocation_create` checks everything it can before queueing (input shape, the model exists, is
enabled and configured, takes the parameters given), so a bad request is a 400/404/409 and nothing
is queued. The worker routes the call again (settings may have changed meanwhile:
`providers.routing` balances it over the model's entries, cools failing ones down and falls
back), and stores what came back and who answered. Chat is streamed inside the worker to record
time to first token.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from config import errors
from config.db import release_while_waiting
from invocations import codec, limits, parameters, tasks
from invocations.models import Invocation
from providers import balancing, jobs, routing, selectors
from providers.models import JobStatus
from tenants.principals import Principal

logger = logging.getLogger(__name__)

AUDIO_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "opus": "audio/ogg", "flac": "audio/flac"}


def _default_model(*, principal: Principal, model_type: str) -> tuple[str, str]:
    found = routing.names(principal.tenant).defaults.get(model_type)
    if found is not None:
        return found
    raise errors.Conflict(
        f"This workspace has no usable {model_type} model: configure one, or name one.",
        code="no_model",
    )


def invocation_create(
    *,
    principal: Principal,
    model_type: str,
    provider: str | None,
    model: str | None,
    request: dict[str, Any],
    idempotency_key: str | None = None,
) -> tuple[Invocation, bool]:
    """Queue a model call; returns (invocation, created). A repeated idempotency key returns the
    first invocation instead of a new one."""
    tenant = principal.tenant
    if idempotency_key:
        existing = Invocation.objects.filter(tenant=tenant, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    if not provider or not model:
        provider, model = _default_model(principal=principal, model_type=model_type)
    route = routing.route(
        tenant_id=tenant.pk, provider=provider, model_type=model_type, model=model
    )  # NotFound / Conflict before anything is queued
    if model_type == "llm":
        _check_parameters(route, request.get("parameters") or {})
    hold = limits.admit(tenant, principal.api_key, lambda: codec.estimate(model_type, request))
    held = (hold.minute, hold.tokens) if hold else ()
    try:
        if model_type == "speech2text":
            request = _store_audio(tenant.pk, request)
        with transaction.atomic():
            invocation = Invocation.objects.create(
                tenant=tenant,
                api_key=principal.api_key,
                user=principal.membership.user if principal.membership else None,
                model_type=model_type,
                provider=provider,
                model=model,
                credential_id=route.entries[0].credential_id,
                custom_model_id=route.entries[0].custom_model_id,
                request=request,
                idempotency_key=idempotency_key or None,
            )
            transaction.on_commit(lambda: _publish(invocation, held))
    except BaseException as exc:
        limits.settle(principal.api_key.pk if principal.api_key else None, 0, hold)
        if not idempotency_key or not isinstance(exc, IntegrityError):
            raise
        # the same key raced in
        return Invocation.objects.get(tenant=tenant, idempotency_key=idempotency_key), False
    return invocation, True


def _publish(invocation: Invocation, held: tuple[int, ...]) -> None:
    """Send the committed job to the workers. If the queue cannot take it (Redis is away), the
    job is taken back (the row and its stored audio deleted) and the caller gets a 503: nothing
    was accepted, so a client that tries again later makes no duplicate (its idempotency key is
    free again)."""
    try:
        tasks.run.delay(invocation.pk, *held, tenant_id=invocation.tenant_id)
    except Exception as exc:  # noqa: BLE001 - kombu's OperationalError, redis errors, ...
        logger.warning("Invocation %s not queued, taken back (%s)", invocation.pk, exc)
        Invocation.objects.filter(pk=invocation.pk, status=JobStatus.QUEUED).delete()
        if invocation.request.get("audio_path"):
            default_storage.delete(invocation.request["audio_path"])
        raise errors.Unavailable(
            "The job queue cannot be reached just now, so the call was not accepted; "
            "try again in a few seconds."
        ) from None


def _check_parameters(route: routing.Route, given: dict[str, Any]) -> None:
    """The chat parameters against the model's rules: a custom model's own (the provider's
    manifest has none for it) are the common sampling settings."""
    predefined = selectors.manifest_get(route.provider).predefined("llm", route.model)
    custom = any(entry.custom_model_id for entry in route.entries)
    parameters.check(given, () if custom or predefined is None else predefined.parameter_rules)


def _store_audio(tenant_id: int, request: dict[str, Any]) -> dict[str, Any]:
    """Audio goes to file storage; the request row keeps only its path."""
    audio = base64.b64decode(request.pop("audio"))
    name = f"invocation-inputs/{tenant_id}/{uuid.uuid4().hex}-{request.get('filename', 'audio')}"
    return {
        **request,
        "audio_path": default_storage.save(name, ContentFile(audio)),
        "bytes": len(audio),
    }


# --- The worker side --------------------------------------------------------------------------


def _claim(invocation_id: int) -> Invocation | None:
    """queued (or running with its lease run out: its worker died) -> running, with a lease,
    and the row as it now is, in one statement (UPDATE ... RETURNING, which PostgreSQL and SQLite
    3.35+ both have); None when it finished or a live worker runs it."""
    table = connection.ops.quote_name(Invocation._meta.db_table)
    now = timezone.now()
    at = connection.ops.adapt_datetimefield_value
    claimed = Invocation.objects.raw(
        f"UPDATE {table} SET status = %s, started_at = %s, lease_until = %s, "  # noqa: S608 - the table name is ours
        "attempts = attempts + 1 WHERE id = %s AND (status = %s OR (status = %s AND "
        "(lease_until < %s OR (lease_until IS NULL AND started_at < %s)))) RETURNING *",
        [
            JobStatus.RUNNING,
            at(now),
            at(jobs.lease_end()),
            invocation_id,
            JobStatus.QUEUED,
            JobStatus.RUNNING,
            at(now),
            at(now - timedelta(seconds=settings.JOB_LEASE_SECONDS)),
        ],
    )
    return next(iter(claimed), None)


def _fail(
    invocation: Invocation,
    error: errors.ServiceError,
    started: float,
    hold: limits.TokenHold | None = None,
) -> None:
    limits.settle(invocation.api_key_id, 0, hold)
    Invocation.objects.filter(pk=invocation.pk).update(
        status=JobStatus.FAILED,
        error_code=error.code,
        error_message=error.message,
        latency_ms=int((time.perf_counter() - started) * 1000),
        finished_at=timezone.now(),
    )
    _announce(invocation.pk)


def invocation_run(
    *,
    invocation_id: int,
    tenant_id: int | None = None,
    defer: Callable[[], object] | None = None,
    hold_minute: int | None = None,
    hold_tokens: int = 0,
) -> None:
    """Run one invocation through the routed call path (idempotent: a finished one is left
    alone). A worker's task passes `defer`, called instead while the workspace has its share of
    the workers busy (jobs.fair_turn). `hold_*`: the tokens its admission holds in its key's
    minute (limits.admit)."""
    turn = (
        jobs.fair_turn(Invocation, invocation_id, tenant_id)
        if defer
        else contextlib.nullcontext(True)
    )
    with turn as may_run:
        if not may_run:
            defer()
            return
        invocation = _claim(invocation_id)
        if invocation is None:
            return
        with jobs.LEASES.held(Invocation, invocation.pk):
            _run(invocation, hold_minute, hold_tokens)


def _run(invocation: Invocation, hold_minute: int | None, hold_tokens: int) -> None:
    hold = None
    if invocation.api_key_id is not None and hold_minute is not None and hold_tokens:
        hold = limits.TokenHold(invocation.api_key_id, hold_minute, hold_tokens)
    started = time.perf_counter()
    route: routing.Route | None = None
    kind, data = invocation.model_type, invocation.request
    try:
        route = routing.route(
            tenant_id=invocation.tenant_id,
            provider=invocation.provider,
            model_type=kind,
            model=invocation.model,
        )
        audio = b""
        if kind == "speech2text":
            with default_storage.open(data["audio_path"], "rb") as stored:
                audio = stored.read()
        served = routing.call(
            route,
            lambda adapter, model: codec.run(
                adapter, model, kind, data, started=started, audio=audio
            ),
            routing.Usage(lambda: codec.estimate(kind, data), codec.tokens_used),
        )
    except errors.ServiceError as exc:
        _fail(invocation, exc, started, hold)
        return
    except OperationalError:
        raise  # the database is away: the task retries the whole job
    except Exception as exc:  # noqa: BLE001 - the task's edge: whatever broke, the job ends
        _fail(
            invocation,
            jobs.unexpected(exc, job=f"Invocation {invocation.pk}", secrets=_secrets(route)),
            started,
            hold,
        )
        return
    try:
        _succeed(invocation, served, started, hold)
    except OperationalError:
        raise
    except Exception as exc:  # noqa: BLE001 - a result that cannot be stored still ends the job
        _fail(
            invocation,
            jobs.unexpected(exc, job=f"Invocation {invocation.pk}", secrets=_secrets(route)),
            started,
        )  # the hold is settled already


def _secrets(route: routing.Route | None) -> tuple[str, ...]:
    """What an unexpected error's text must not show: every entry's secrets."""
    if route is None:
        return ()
    return tuple(s for entry in route.entries for s in entry.adapter.secret_values())


def _succeed(
    invocation: Invocation,
    served: routing.Served,
    started: float,
    hold: limits.TokenHold | None = None,
) -> None:
    fields = dict(served.value)
    answered, entry = served.route, served.entry
    audio = fields.pop("audio", None)
    limits.settle(invocation.api_key_id, codec.tokens_used(fields), hold)
    fields["cost"], fields["currency"] = routing.cost(answered, fields)
    if audio is not None:
        extension = next(
            (e for e, t in AUDIO_TYPES.items() if t == fields["result"]["content_type"]), "bin"
        )
        invocation.result_file.save(
            f"{invocation.tenant_id}/{invocation.pk}.{extension}", ContentFile(audio), save=False
        )
        fields["result_file"] = invocation.result_file.name
    Invocation.objects.filter(pk=invocation.pk).update(
        status=JobStatus.SUCCEEDED,
        latency_ms=int((time.perf_counter() - started) * 1000),
        finished_at=timezone.now(),
        credential_id=entry.credential_id,
        custom_model_id=entry.custom_model_id,
        lb_entry_id=entry.lb_entry_id,
        served_by=entry.label[:100],
        answered_provider=answered.provider,
        answered_model=answered.model,
        **fields,
    )
    if fields["cost"] is not None:
        limits.charge_cost(
            tenant_id=invocation.tenant_id,
            api_key_id=invocation.api_key_id,
            cost=fields["cost"],
            currency=fields["currency"],
        )
    _announce(invocation.pk)


def _done_key(invocation_id: int) -> str:
    return f"mps:done:{invocation_id}"


def _announce(invocation_id: int) -> None:
    """Wake whoever waits on this invocation (`invocation_wait`); a lost wake-up costs a waiter
    at most `WAIT_RECHECK` seconds."""
    key = _done_key(invocation_id)
    with contextlib.suppress(redis.RedisError):
        balancing.client().pipeline().rpush(key, 1).expire(key, 60).execute()


WAIT_RECHECK = 2.0  # seconds between database checks while waiting, in case a wake-up was lost


class _Waiters:
    """How many requests of this process wait in `invocation_wait` now: at most
    LONG_POLL_MAX_WAITERS, so that waiting requests cannot hold every web thread."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self._count >= settings.LONG_POLL_MAX_WAITERS:
                return False
            self._count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._count -= 1


WAITERS = _Waiters()


def invocation_wait(*, invocation: Invocation, seconds: float) -> Invocation:
    """Wait until the invocation finishes or `seconds` pass (long-poll for GET ?wait=): woken by
    the worker through Redis (a blocking pop on a pooled connection), not by polling the
    database. A woken waiter puts the token back, so every waiter of the job wakes. When this
    process has LONG_POLL_MAX_WAITERS requests waiting already, it answers at once (the caller
    sees the job still queued or running, and asks again)."""
    if not WAITERS.enter():
        return invocation
    try:
        return _wait(invocation, seconds)
    finally:
        WAITERS.leave()


def _wait(invocation: Invocation, seconds: float) -> Invocation:
    deadline = time.monotonic() + seconds
    key = _done_key(invocation.pk)
    waiting = balancing.client(blocking=True)
    while invocation.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        release_while_waiting()  # no database connection held while it waits
        try:
            if waiting.blpop([key], timeout=min(left, WAIT_RECHECK)):
                waiting.pipeline().rpush(key, 1).expire(key, 60).execute()
        except redis.RedisError:
            time.sleep(min(left, 0.1))  # Redis away: poll the database
        invocation.refresh_from_db()
    return invocation
