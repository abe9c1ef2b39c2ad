"""Invocations: accept a model call as a job, run it in a worker, record result, usage and cost.

`invocation_create` checks everything it can before queueing (input shape, the model exists, is
enabled and configured), so a bad request is a 400/404/409 and nothing is queued. The worker
re-resolves the model's credentials (settings may have changed meanwhile), calls the adapter,
and stores what came back. Chat is streamed inside the worker to record time to first token.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from config import errors
from invocations import tasks
from invocations.models import Invocation
from providers import binding, jobs, selectors
from providers import services as provider_services
from providers.models import CustomModel, JobStatus, ProviderCredential
from providers.runtime import base as rt
from tenants.principals import Principal

AUDIO_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "opus": "audio/ogg", "flac": "audio/flac"}


def _default_model(*, principal: Principal, model_type: str) -> tuple[str, str]:
    for view in selectors.default_models(tenant=principal.tenant):
        if view.model_type == model_type and view.model is not None:
            return view.model.provider, view.model.model
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
    target = binding.resolve(tenant=tenant, provider=provider, model_type=model_type, model=model)
    if model_type == "speech2text":
        request = _store_audio(tenant.pk, request)
    try:
        with transaction.atomic():
            invocation = Invocation.objects.create(
                tenant=tenant,
                api_key=principal.api_key,
                user=principal.membership.user if principal.membership else None,
                model_type=model_type,
                provider=provider,
                model=model,
                credential=target.row if isinstance(target.row, ProviderCredential) else None,
                custom_model=target.row if isinstance(target.row, CustomModel) else None,
                request=request,
                idempotency_key=idempotency_key or None,
            )
            transaction.on_commit(lambda: tasks.run.delay(invocation.pk))
    except IntegrityError:  # the same key raced in
        return Invocation.objects.get(tenant=tenant, idempotency_key=idempotency_key), False
    return invocation, True


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
    claimed = Invocation.objects.filter(
        pk=invocation_id, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)
    ).update(status=JobStatus.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1)
    return Invocation.objects.filter(pk=invocation_id).first() if claimed else None


def _chat_request(data: Mapping[str, Any]) -> rt.ChatRequest:
    messages = []
    for m in data["messages"]:
        content = m.get("content") or ""
        if isinstance(content, list):
            content = tuple(
                rt.ContentPart("image", image_url=p["image_url"]["url"])
                if p.get("type") == "image_url"
                else rt.ContentPart("text", text=p.get("text", ""))
                for p in content
            )
        calls = tuple(
            rt.ToolCall(c.get("id", ""), c["function"]["name"], c["function"].get("arguments", ""))
            for c in m.get("tool_calls") or ()
        )
        messages.append(rt.Message(m["role"], content, calls, m.get("tool_call_id", "")))
    tools = tuple(
        rt.Tool(t["name"], t.get("description", ""), t.get("parameters") or {})
        for t in data.get("tools") or ()
    )
    return rt.ChatRequest(
        messages=tuple(messages),
        parameters=data.get("parameters") or {},
        tools=tools,
        tool_choice=data.get("tool_choice"),
        response_format=data.get("response_format"),
        stop=tuple(data.get("stop") or ()),
    )


def _call(adapter: rt.Adapter, invocation: Invocation, started: float) -> dict[str, Any]:
    """Run the call; returns the fields to store (result, usage, timings)."""
    data, model = invocation.request, invocation.model
    kind = invocation.model_type
    if kind == "llm":
        request = _chat_request(data)
        ttft: int | None = None

        def timed(chunks: Iterator[rt.ChatChunk]) -> Iterator[rt.ChatChunk]:
            nonlocal ttft
            for chunk in chunks:
                if ttft is None and (chunk.text or chunk.tool_calls):
                    ttft = int((time.perf_counter() - started) * 1000)
                yield chunk

        try:
            result = rt.accumulate(timed(adapter.stream(model, request)))
        except errors.InvalidInput as exc:
            if exc.code != "unsupported":
                raise
            result = adapter.chat(model, request)
        return {
            "result": {
                "text": result.text,
                "tool_calls": [
                    {"id": c.id, "name": c.name, "arguments": c.arguments}
                    for c in result.tool_calls
                ],
                "finish_reason": result.finish_reason,
            },
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
            "usage_counted": result.usage.counted,
            "ttft_ms": ttft,
        }
    if kind == "text-embedding":
        embedded = adapter.embed(model, data["texts"])
        return {
            "result": {
                "embeddings": [list(v) for v in embedded.vectors],
                "dimensions": embedded.dimensions,
            },
            "prompt_tokens": embedded.usage.prompt_tokens,
            "usage_counted": embedded.usage.counted,
        }
    if kind == "rerank":
        ranked = adapter.rerank(model, data["query"], data["documents"], data.get("top_n"))
        return {
            "result": {
                "results": [
                    {"index": h.index, "score": h.score, "document": h.document}
                    for h in ranked.hits
                ]
            },
            "prompt_tokens": ranked.usage.prompt_tokens,
            "usage_counted": ranked.usage.counted,
        }
    if kind == "speech2text":
        with default_storage.open(data["audio_path"], "rb") as audio:
            heard = adapter.transcribe(
                model, audio.read(), data.get("filename", "audio.wav"), data.get("language")
            )
        return {"result": {"text": heard.text}, "audio_seconds": heard.duration_seconds}
    if kind == "tts":
        speech = adapter.speak(
            model, data["text"], data.get("voice") or "alloy", data.get("format") or "mp3"
        )
        return {
            "result": {"content_type": speech.content_type, "bytes": len(speech.audio)},
            "characters": speech.characters,
            "audio": speech.audio,
        }
    raise errors.InvalidInput(f"{kind} models cannot be invoked.", code="unsupported")


def _cost(invocation: Invocation, fields: Mapping[str, Any]) -> tuple[Decimal | None, str]:
    manifest = selectors.catalog().get(invocation.provider)
    predefined = manifest.predefined(invocation.model_type, invocation.model) if manifest else None
    pricing = predefined.pricing if predefined else None
    if pricing is None:
        return None, ""
    million = Decimal(1_000_000)
    if pricing.unit == "1M-tokens":
        cost = Decimal(fields.get("prompt_tokens") or 0) * pricing.input / million
        cost += Decimal(fields.get("completion_tokens") or 0) * (pricing.output or 0) / million
    elif pricing.unit == "1M-characters":
        cost = Decimal(fields.get("characters") or 0) * pricing.input / million
    elif fields.get("audio_seconds") is not None:
        cost = Decimal(str(fields["audio_seconds"])) / 60 * pricing.input
    else:
        return None, ""
    return cost.quantize(Decimal("0.00000001")), pricing.currency


def _fail(invocation: Invocation, error: errors.ServiceError, started: float) -> None:
    Invocation.objects.filter(pk=invocation.pk).update(
        status=JobStatus.FAILED,
        error_code=error.code,
        error_message=error.message,
        latency_ms=int((time.perf_counter() - started) * 1000),
        finished_at=timezone.now(),
    )


def invocation_run(*, invocation_id: int) -> None:
    """Run one invocation (idempotent: a finished one is left alone)."""
    invocation = _claim(invocation_id)
    if invocation is None:
        return
    started = time.perf_counter()
    secrets: tuple[str, ...] = ()
    try:
        target = binding.resolve(
            tenant=invocation.tenant,
            provider=invocation.provider,
            model_type=invocation.model_type,
            model=invocation.model,
        )
        provider_services.quota_check(tenant=invocation.tenant, provider=invocation.provider)
        adapter = target.adapter()
        secrets = adapter.endpoint.secret_values()
        fields = _call(adapter, invocation, started)
    except errors.ServiceError as exc:
        _fail(invocation, exc, started)
        return
    except OperationalError:
        raise  # the database is away: the task retries the whole job
    except Exception as exc:  # noqa: BLE001 - the task's edge: whatever broke, the job ends
        _fail(
            invocation,
            jobs.unexpected(exc, job=f"Invocation {invocation.pk}", secrets=secrets),
            started,
        )
        return
    audio = fields.pop("audio", None)
    provider_services.quota_consume(
        tenant=invocation.tenant,
        provider=invocation.provider,
        tokens=(fields.get("prompt_tokens") or 0) + (fields.get("completion_tokens") or 0),
    )
    fields["cost"], fields["currency"] = _cost(invocation, fields)
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
        **fields,
    )


def invocation_wait(*, invocation: Invocation, seconds: float) -> Invocation:
    """Poll until the invocation finishes or `seconds` pass (long-poll for GET ?wait=)."""
    deadline = time.monotonic() + seconds
    while (
        invocation.status in (JobStatus.QUEUED, JobStatus.RUNNING) and time.monotonic() < deadline
    ):
        time.sleep(0.1)
        invocation.refresh_from_db()
    return invocation
