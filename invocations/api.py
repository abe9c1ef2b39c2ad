"""/api/v1/invocations: queue a model call (202), read it back, optionally waiting for it."""

from __future__ import annotations

import base64
import binascii
import csv
import math
from pathlib import PurePosixPath
from typing import Any

from django.http import FileResponse, HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from config import errors, openapi, parsers, query
from invocations import codec, services, usage
from invocations.models import Invocation
from providers.api import MODEL_TYPES
from providers.models import JobStatus
from tenants.api import TenantApi
from tenants.principals import Perm

MAX_WAIT = 30.0
# The only types a tts invocation's audio is served as (inline, so a page can play it). The type
# comes from the backend's reply, so anything else (text/html with a script, say) is served as
# an opaque download: never rendered on our origin.
SAFE_AUDIO_TYPES = frozenset(
    {
        *services.AUDIO_TYPES.values(),
        "audio/mpeg",
        "audio/mp3",
        "audio/mp4",
        "audio/wav",
        "audio/x-wav",
        "audio/wave",
        "audio/ogg",
        "audio/opus",
        "audio/flac",
        "audio/x-flac",
        "audio/aac",
        "audio/pcm",
        "audio/l16",
        "audio/webm",
    }
)


# --- Input, one shape per model type ------------------------------------------------------------


class FunctionCallInput(serializers.Serializer):
    name = serializers.RegexField(r"^[a-zA-Z0-9_-]{1,64}$")
    arguments = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="The arguments, a JSON string."
    )


class ToolCallInput(serializers.Serializer):
    """A tool call an assistant message made earlier, in OpenAI's shape."""

    id = serializers.CharField(required=False, allow_blank=True, default="", max_length=128)
    type = serializers.ChoiceField(choices=["function"], required=False, default="function")
    function = FunctionCallInput()


class MessageInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant", "tool"])
    content = serializers.JSONField(
        required=False,
        help_text='Text, or parts: [{"type": "text", "text"}, {"type": "image_url", '
        '"image_url": {"url"}}]',
    )
    tool_calls = ToolCallInput(many=True, required=False)
    tool_call_id = serializers.CharField(required=False)

    def validate_content(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
            raise serializers.ValidationError("Give text, or a list of content parts.")
        for part in value:
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                continue
            url = (
                (part.get("image_url") or {}).get("url")
                if part.get("type") == "image_url"
                else None
            )
            if not isinstance(url, str) or not url.startswith(
                ("http://", "https://", "data:image/")
            ):
                raise serializers.ValidationError(
                    "Each part is {type: text, text} or {type: image_url, image_url: {url}}."
                )
        return value


class ToolInput(serializers.Serializer):
    name = serializers.RegexField(r"^[a-zA-Z0-9_-]{1,64}$")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    parameters = serializers.DictField(required=False, default=dict)


class ChatInput(serializers.Serializer):
    messages = MessageInput(many=True, allow_empty=False)
    parameters = serializers.DictField(required=False, default=dict)
    tools = ToolInput(many=True, required=False)
    tool_choice = serializers.CharField(required=False)
    response_format = serializers.DictField(required=False)
    stop = serializers.ListField(child=serializers.CharField(), required=False, max_length=4)


class EmbeddingInput(serializers.Serializer):
    texts = serializers.ListField(
        child=serializers.CharField(max_length=100_000), allow_empty=False, max_length=2048
    )


class RerankInput(serializers.Serializer):
    query = serializers.CharField(max_length=10_000)
    documents = serializers.ListField(
        child=serializers.CharField(max_length=100_000), allow_empty=False, max_length=1000
    )
    top_n = serializers.IntegerField(required=False, min_value=1)


class TranscriptionInput(serializers.Serializer):
    audio = serializers.CharField(help_text="The audio file, base64-encoded (25 MB at most).")
    filename = serializers.RegexField(r"^[\w.-]{1,100}$", default="audio.wav")
    language = serializers.CharField(required=False, max_length=16)

    def validate_audio(self, value: str) -> str:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise serializers.ValidationError("Not valid base64.") from exc
        if not decoded:
            raise serializers.ValidationError("The audio is empty.")
        if len(decoded) > codec.MAX_AUDIO_BYTES:
            raise serializers.ValidationError("The audio is larger than 25 MB.")
        return value


class SpeechInput(serializers.Serializer):
    text = serializers.CharField(max_length=4096)
    voice = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        default="",
        help_text="Blank: the model's own default voice (OpenAI's: alloy).",
    )
    format = serializers.ChoiceField(choices=list(services.AUDIO_TYPES), default="mp3")


INPUTS: dict[str, type[serializers.Serializer]] = {
    "llm": ChatInput,
    "text-embedding": EmbeddingInput,
    "rerank": RerankInput,
    "speech2text": TranscriptionInput,
    "tts": SpeechInput,
}


class InvocationInput(serializers.Serializer):
    model_type = serializers.ChoiceField(choices=MODEL_TYPES)
    provider = serializers.CharField(required=False, allow_null=True, max_length=64)
    model = serializers.CharField(required=False, allow_null=True, max_length=255)
    input = serializers.DictField(help_text="Shape depends on model_type; see the docs.")
    idempotency_key = serializers.CharField(required=False, max_length=128)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        shape = INPUTS[data["model_type"]](data=data["input"])
        if not shape.is_valid():
            raise serializers.ValidationError({"input": shape.errors})
        data["input"] = dict(shape.validated_data)
        if bool(data.get("provider")) != bool(data.get("model")):
            raise serializers.ValidationError(
                {"model": ["Give provider and model together, or neither for the default."]}
            )
        return data


# --- Output -------------------------------------------------------------------------------------


_MOMENT = serializers.DateTimeField()
_COST = serializers.DecimalField(max_digits=16, decimal_places=8)


class InvocationOutput(serializers.ModelSerializer):
    """An invocation as the API shows it. The fields define the schema; `to_representation` is
    written out because DRF builds a ModelSerializer's fields anew for every object it shows,
    which cost a third of a job's web CPU. A test holds both to the same output."""

    model_type = serializers.CharField()
    result = serializers.SerializerMethodField()
    audio_url = serializers.SerializerMethodField()

    class Meta:
        model = Invocation
        fields = [
            "id", "status", "source", "model_type", "provider", "model", "result", "audio_url",
            "error_code", "error_message", "prompt_tokens", "completion_tokens", "usage_counted",
            "audio_seconds", "characters", "cost", "currency", "latency_ms", "ttft_ms",
            "attempts", "idempotency_key", "created_at", "started_at", "finished_at",
            "served_by", "lb_entry", "answered_provider", "answered_model",
        ]  # fmt: skip

    def get_result(self, obj: Invocation) -> dict[str, Any]:
        return obj.result

    def get_audio_url(self, obj: Invocation) -> str | None:
        return f"/api/v1/invocations/{obj.pk}/audio" if obj.result_file else None

    def to_representation(self, obj: Invocation) -> dict[str, Any]:
        return {
            "id": obj.pk,
            "status": obj.status,
            "source": obj.source,
            "model_type": obj.model_type,
            "provider": obj.provider,
            "model": obj.model,
            "result": self.get_result(obj),
            "audio_url": self.get_audio_url(obj),
            "error_code": obj.error_code,
            "error_message": obj.error_message,
            "prompt_tokens": obj.prompt_tokens,
            "completion_tokens": obj.completion_tokens,
            "usage_counted": obj.usage_counted,
            "audio_seconds": obj.audio_seconds,
            "characters": obj.characters,
            "cost": None if obj.cost is None else _COST.to_representation(obj.cost),
            "currency": obj.currency,
            "latency_ms": obj.latency_ms,
            "ttft_ms": obj.ttft_ms,
            "attempts": obj.attempts,
            "idempotency_key": obj.idempotency_key,
            "created_at": _MOMENT.to_representation(obj.created_at),
            "started_at": _MOMENT.to_representation(obj.started_at),
            "finished_at": _MOMENT.to_representation(obj.finished_at),
            "served_by": obj.served_by,
            "lb_entry": obj.lb_entry_id,
            "answered_provider": obj.answered_provider,
            "answered_model": obj.answered_model,
        }


# --- Views --------------------------------------------------------------------------------------


WAIT_PARAMETER = OpenApiParameter(
    "wait",
    {"type": "number", "minimum": 0, "maximum": MAX_WAIT},
    description=f"Seconds to wait for the call to finish (0 to {MAX_WAIT:g}). A server with many "
    "requests waiting already answers at once: the job is then still queued or running; ask again.",
)


def wait_seconds(request: Request) -> float:
    """`?wait=N`, from 0 to MAX_WAIT; 0 when absent. Anything else is a 400."""
    raw = request.query_params.get("wait")
    if raw is None:
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if math.isnan(seconds):
        raise errors.InvalidInput(fields={"wait": ["Give seconds, e.g. 10."]})
    if not 0 <= seconds <= MAX_WAIT:
        raise errors.InvalidInput(fields={"wait": [f"Give seconds from 0 to {MAX_WAIT:g}."]})
    return seconds


class InvocationApi(TenantApi):
    required_perms = {"GET": Perm.INVOKE, "POST": Perm.INVOKE}

    def _get(self, request: Request, invocation_id: int) -> Invocation:
        try:
            return Invocation.objects.get(tenant_id=request.tenant.pk, pk=invocation_id)
        except Invocation.DoesNotExist:
            raise errors.NotFound("No such invocation.") from None


class InvocationPagination(query.Pagination):
    max_limit = 200


# The list's filters: those with fixed values refuse any other.
LIST_FILTERS: dict[str, list[str] | None] = {
    "status": list(JobStatus.values),
    "model_type": MODEL_TYPES,
    "provider": None,
    "model": None,
    "source": ["job", "gateway"],
}


class InvocationListApi(InvocationApi):
    parser_classes = [parsers.InlineMediaJSONParser]  # audio and images come inline: 36 MB

    @extend_schema(
        request=InvocationInput,
        parameters=[WAIT_PARAMETER],
        responses={202: InvocationOutput, 200: InvocationOutput},
        summary="Queue a model call (202); with ?wait=N, answer when it finishes (200)",
        description="202: queued or still running. 200: it finished within `wait`, or a "
        "repeated idempotency_key found the first call.",
    )
    def post(self, request: Request) -> Response:
        wait = wait_seconds(request)
        given = InvocationInput(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        invocation, created = services.invocation_create(
            principal=self.principal,
            model_type=data["model_type"],
            provider=data.get("provider"),
            model=data.get("model"),
            request=data["input"],
            idempotency_key=data.get("idempotency_key"),
        )
        if wait:
            invocation = services.invocation_wait(invocation=invocation, seconds=wait)
        unfinished = invocation.status in (JobStatus.QUEUED, JobStatus.RUNNING)
        return Response(
            InvocationOutput(invocation).data, status=202 if created and unfinished else 200
        )

    @extend_schema(
        parameters=[
            *(
                OpenApiParameter(name, enum=choices) if choices else OpenApiParameter(name, str)
                for name, choices in LIST_FILTERS.items()
            ),
            *openapi.page_parameters(InvocationPagination.max_limit),
        ],
        responses=openapi.page_of("InvocationPage", InvocationOutput),
        operation_id="v1_invocations_list",
        summary="This workspace's invocations, newest first",
    )
    def get(self, request: Request) -> Response:
        rows = Invocation.objects.filter(tenant=request.tenant)
        for name, choices in LIST_FILTERS.items():
            value = (
                query.choice(request.query_params, name, choices)
                if choices
                else request.query_params.get(name)
            )
            if value:
                rows = rows.filter(**{name: value})
        paginator = InvocationPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(InvocationOutput(page, many=True).data)


class InvocationDetailApi(InvocationApi):
    @extend_schema(
        parameters=[WAIT_PARAMETER],
        responses=InvocationOutput,
        summary="One invocation; with ?wait=N, answers when it finishes or after N seconds",
    )
    def get(self, request: Request, invocation_id: int) -> Response:
        invocation = self._get(request, invocation_id)
        wait = wait_seconds(request)
        if wait:
            invocation = services.invocation_wait(invocation=invocation, seconds=wait)
        return Response(InvocationOutput(invocation).data)


def audio_type(stored: Any) -> str | None:
    """The stored content type without its parameters (`; charset=...`, `; rate=...`),
    lower-cased, when it is a known audio type; None otherwise."""
    kind = str(stored or "").split(";", 1)[0].strip().lower()
    return kind if kind in SAFE_AUDIO_TYPES else None


class InvocationAudioApi(InvocationApi):
    @extend_schema(
        responses={(200, "audio/*"): bytes, (200, "application/octet-stream"): bytes},
        summary="The audio a tts invocation made",
        description="Served inline as its audio type when that is a known one; anything else "
        "the backend called audio comes as an application/octet-stream attachment.",
    )
    def get(self, request: Request, invocation_id: int) -> FileResponse:
        invocation = self._get(request, invocation_id)
        if not invocation.result_file:
            raise errors.NotFound("This invocation has no audio.")
        kind = audio_type(invocation.result.get("content_type"))
        name = PurePosixPath(invocation.result_file.name)
        response = FileResponse(
            invocation.result_file.open("rb"),
            content_type=kind or "application/octet-stream",
            as_attachment=kind is None,
            filename=name.name if kind else f"{name.stem}.bin",
        )
        response["X-Content-Type-Options"] = "nosniff"
        # Whatever a browser makes of it, it runs nothing and reaches nothing of ours.
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response


# --- Usage ---------------------------------------------------------------------------------------


class UsageTotalsOutput(serializers.Serializer):
    calls = serializers.IntegerField()
    errors = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cost = serializers.DictField(
        child=serializers.CharField(), help_text='Per currency code, e.g. {"USD": "0.0123"}.'
    )
    p50_ms = serializers.IntegerField(allow_null=True)
    p95_ms = serializers.IntegerField(allow_null=True)


class UsageGroupOutput(UsageTotalsOutput):
    day = serializers.CharField(required=False, help_text="YYYY-MM-DD, in the server's time zone")
    provider = serializers.CharField(required=False)
    model = serializers.CharField(required=False)
    api_key = serializers.IntegerField(required=False, allow_null=True)
    source = serializers.CharField(required=False, help_text="job or gateway")


class UsageOutput(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    group_by = serializers.ListField(child=serializers.CharField())
    groups = UsageGroupOutput(many=True)
    total = UsageTotalsOutput()


def _totals(row: usage.UsageRow) -> dict[str, Any]:
    return {
        "calls": row.calls,
        "errors": row.errors,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cost": dict(row.cost_items),
        "p50_ms": row.p50_ms,
        "p95_ms": row.p95_ms,
    }


# Usage's parameters with fixed values (the page reads them leniently; the API refuses others).
USAGE_CHOICES = {"period": list(usage.PERIODS), "source": ["job", "gateway"], "export": ["csv"]}


class UsageApi(TenantApi):
    required_perms = {"GET": Perm.READ_SETTINGS}

    @extend_schema(
        parameters=[
            OpenApiParameter("period", enum=USAGE_CHOICES["period"], description="Default 7d"),
            OpenApiParameter(
                "group_by",
                {"type": "array", "items": {"type": "string", "enum": list(usage.GROUPS)}},
                style="form",
                explode=False,
                description=f"Comma-separated (default {','.join(usage.DEFAULT_GROUPS)})",
            ),
            OpenApiParameter("provider", str),
            OpenApiParameter("model", str),
            OpenApiParameter("api_key", str, description=f"A key's id, or {usage.NO_API_KEY}"),
            OpenApiParameter("source", enum=USAGE_CHOICES["source"]),
            OpenApiParameter("export", enum=USAGE_CHOICES["export"], description="csv: a download"),
        ],
        responses={200: UsageOutput, (200, "text/csv"): bytes},
        summary="Calls, tokens, cost and latency per day, provider, model, API key or source "
        "(job and gateway calls alike); export=csv to download",
    )
    def get(self, request: Request) -> Response | HttpResponse:
        for name, choices in USAGE_CHOICES.items():
            query.choice(request.query_params, name, choices)
        filters = usage.UsageFilters.from_params(request.query_params)
        asked = [g.strip() for g in request.query_params.get("group_by", "").split(",") if g]
        unknown = [g for g in asked if g not in usage.GROUPS]
        if unknown:
            raise errors.InvalidInput(
                fields={
                    "group_by": [f"Unknown: {', '.join(unknown)}; use {', '.join(usage.GROUPS)}."]
                }
            )
        group_by = list(dict.fromkeys(asked)) or list(usage.DEFAULT_GROUPS)
        now = timezone.now()
        groups, total = usage.usage_groups(
            tenant=request.tenant, filters=filters, group_by=group_by, now=now
        )
        if request.query_params.get("export") == "csv":
            return _usage_csv(group_by, groups)
        return Response(
            {
                "since": usage.period_start(filters.period, now),
                "until": now,
                "group_by": group_by,
                "groups": [{**g.key, **_totals(g.totals)} for g in groups],
                "total": _totals(total),
            }
        )


def _usage_csv(group_by: list[str], groups: list[usage.Group]) -> HttpResponse:
    currencies = sorted({c for g in groups for c in g.totals.costs})
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="usage.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [*group_by, "calls", "errors", "prompt_tokens", "completion_tokens",
         *(f"cost_{c}" for c in currencies), "p50_ms", "p95_ms"]
    )  # fmt: skip
    for group in groups:
        costs = dict(group.totals.cost_items)
        writer.writerow(
            [*(_cell(group.key[g]) for g in group_by), group.totals.calls, group.totals.errors,
             group.totals.prompt_tokens, group.totals.completion_tokens,
             *(costs.get(c, "0") for c in currencies),
             _cell(group.totals.p50_ms), _cell(group.totals.p95_ms)]
        )  # fmt: skip
    return response


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
