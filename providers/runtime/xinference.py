"""Xinference (Xorbits Inference): a self-hosted server with its own model registry in front of
OpenAI-compatible inference endpoints.

Credentials: `base_url` (the server, e.g. http://host:9997; a trailing /v1 is tolerated),
`model_uid` (the UID the server runs the model under; our model name when absent), `api_key`
(optional; sent as Bearer — Xinference 4.x turns auth on by default).

Validation follows Dify: `GET /v1/models/{uid}` must describe a running model whose type (and, for
an LLM, abilities) fits the model type asked for; no inference call is made. Inference reuses the
OpenAI-compatible adapter (`/v1/chat/completions`, `/v1/embeddings`, `/v1/rerank`,
`/v1/audio/transcriptions`, `/v1/audio/speech`) with `model` = the UID. An LLM that can `generate`
but not `chat` is sent prompts at `/v1/completions` (its abilities from the same description, kept
five minutes as Dify keeps them); `speak` without a voice lets the server choose (CosyVoice's SFT
models refuse OpenAI's `alloy`, and take their first speaker when none is named).

Errors are `{"detail": ...}` (a list of `{loc, msg}` for request validation errors). The server
answers an unknown UID with 400 "Model not found in the model list" on describe (404 on the
inference routes) and a model of the wrong type with 500 "Model ... is not for ..." — both are
mapped to non-retried errors here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from config import errors
from providers.runtime import probe
from providers.runtime.base import (
    ChatChunk,
    ChatRequest,
    DiscoveredModel,
    Validation,
)
from providers.runtime.http import Response
from providers.runtime.memo import Memo
from providers.runtime.openai_compat import OpenAICompatAdapter

MODEL_TYPES = ("llm", "text-embedding", "rerank", "speech2text", "tts")
TTS_FAMILIES = frozenset({"ChatTTS", "CosyVoice", "FishAudio"})
TTS_ABILITIES = frozenset({"text2audio", "text-to-audio"})
FORBIDDEN_IN_UID = ("/", "?", "#")
ABILITIES_TTL = 300.0  # seconds a model's described abilities are trusted
NOT_FOUND = "model not found"
WRONG_TYPE = " is not for "

# What validation keeps of a description, per backend model type.
_KEPT = {
    "LLM": ("model_ability", "context_length", "model_name", "model_family"),
    "embedding": ("dimensions", "max_tokens", "model_name"),
    "rerank": ("model_name",),
    "audio": ("model_ability", "model_name", "model_family"),
}


def _abilities(description: Mapping[str, Any]) -> list[str]:
    value = description.get("model_ability") or []
    return [str(value)] if isinstance(value, str) else [str(a) for a in value]


def our_type(description: Mapping[str, Any]) -> str | None:
    """Our model type for an Xinference description, or None when we cannot use the model."""
    kind = str(description.get("model_type") or "")
    if kind == "LLM":
        abilities = _abilities(description)
        return "llm" if "chat" in abilities or "generate" in abilities else None
    if kind == "embedding":
        return "text-embedding"
    if kind == "rerank":
        return "rerank"
    if kind == "audio":
        family = str(description.get("model_family") or "")
        if family in TTS_FAMILIES or TTS_ABILITIES & set(_abilities(description)):
            return "tts"
        return "speech2text"
    return None  # image, video, flexible, ...


def _what_it_is(description: Mapping[str, Any]) -> str:
    kind = str(description.get("model_type") or "unknown")
    if kind == "LLM":
        return "an LLM"
    if kind == "audio":
        return f"a {our_type(description)} audio model"
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    return f"{article} {kind} model"


class XinferenceAdapter(OpenAICompatAdapter):
    family = "xinference"
    error_field = "detail"

    def base_url(self) -> str:
        base = (self.endpoint.credentials.get("base_url") or self.endpoint.base_url or "").strip()
        base = base.rstrip("/")
        if not base:
            raise errors.InvalidInput(
                "The Xinference server URL is required.", fields={"server_url": ["Required."]}
            )
        if base.endswith("/v1"):
            base = base[:-3]
        return f"{base}/v1"

    def auth_headers(self) -> dict[str, str]:
        api_key = str(self.endpoint.credentials.get("api_key") or "").strip()
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    default_voice = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._abilities: Memo[tuple[str, ...]] = Memo(ABILITIES_TTL)

    def model_name(self, model: str) -> str:
        return str(self.endpoint.credentials.get("model_uid") or "").strip() or model

    def completion_mode(self, model: str) -> bool:
        """A model that can `generate` but not `chat` takes prompts at /v1/completions: the
        server answers its chat call with "... is not for chat"."""
        abilities = self.abilities(self.model_name(model))
        return "generate" in abilities and "chat" not in abilities

    def abilities(self, uid: str) -> tuple[str, ...]:
        return self._abilities.get(uid, lambda: tuple(_abilities(self.describe(uid))))

    def error_message(self, body: Any) -> str:
        if isinstance(body, dict):
            value = body.get("detail", body.get("error", body))
            if isinstance(value, list):  # FastAPI request validation: [{loc, msg, type}, ...]
                return "; ".join(
                    f"{'.'.join(str(p) for p in item.get('loc', ()))}: {item.get('msg', '')}"
                    if isinstance(item, dict)
                    else str(item)
                    for item in value
                )
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail") or value
            return str(value)
        return str(body)

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        """Xinference's own status conventions on top of the shared mapping."""
        lowered = failure.message.lower()
        if response.status_code == 400 and NOT_FOUND in lowered:
            return errors.UpstreamNotFound(failure.message)
        if response.status_code == 500 and WRONG_TYPE in lowered:
            return errors.UpstreamBadRequest(
                f"{failure.message} (the model UID serves another model type)"
            )
        return failure

    # --- inference (OpenAI-compatible; only what differs) ---------------------------------------

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        # A failure inside the stream arrives as `data: {"error": "..."}` after a 200.
        try:
            yield from super().stream(model, request)
        except errors.UpstreamUnavailable as exc:
            if type(exc) is errors.UpstreamUnavailable and WRONG_TYPE in exc.message.lower():
                raise errors.UpstreamBadRequest(exc.message) from exc
            raise

    # --- the model registry -------------------------------------------------------------------

    def describe(self, uid: str) -> dict[str, Any]:
        if not uid or any(ch in uid for ch in FORBIDDEN_IN_UID):
            raise errors.InvalidInput(
                f"Model UID {uid!r} is not valid: it may not be empty or contain '/', '?' or '#'.",
                fields={"model_uid": ["May not contain '/', '?' or '#'."]},
            )
        data = self.http.json("GET", f"models/{quote(uid, safe='')}")
        if not isinstance(data, dict) or "model_type" not in data:
            raise errors.UpstreamUnavailable(
                f"The server's description of {uid!r} has no model_type: "
                f"{self.http.bounded(str(data), 200)}"
            )
        return data

    def validate(self, model: str, model_type: str) -> Validation:
        """Dify's check: the UID runs a model of the asked type; no inference call."""
        if model_type not in MODEL_TYPES:
            raise self._unsupported(f"{model_type} models")
        uid = self.model_name(model)
        description = self.describe(uid)
        kind = str(description.get("model_type"))
        mapped = our_type(description)
        if model_type == "llm" and kind == "LLM" and mapped is None:
            raise errors.UpstreamBadRequest(
                self.http.bounded(
                    f"Model {uid!r} with abilities {_abilities(description)} is not supported, "
                    "check if you have the right model type (an LLM needs 'chat' or 'generate')."
                )
            )
        if mapped != model_type:
            usable = "" if mapped else ", and this provider cannot use it"
            raise errors.UpstreamBadRequest(
                self.http.bounded(
                    f"model_uid {uid!r} is {_what_it_is(description)}, not {model_type}{usable}."
                )
            )
        details: dict[str, Any] = {"model_uid": uid, "model_type": kind}
        for key in _KEPT.get(kind, ()):
            if description.get(key) is not None:
                details[key] = description[key]
        if "model_ability" in details:
            details["model_ability"] = details["abilities"] = _abilities(description)
        if model_type == "llm":
            abilities = details["abilities"]
            details["completion_type"] = "chat" if "chat" in abilities else "completion"
        if model_type == "text-embedding" and not details.get("dimensions"):
            details["dimensions"] = self.embed(model, [probe.PING]).dimensions
        return Validation(details)

    def list_models(self) -> list[DiscoveredModel]:
        data = self.http.json("GET", "models")
        rows = data.get("data") if isinstance(data, dict) else None
        found = []
        for row in rows or ():
            if not isinstance(row, dict) or not row.get("id"):
                continue
            mapped = our_type(row)
            if mapped is None:  # image, video, ... or an LLM that can neither chat nor generate
                continue
            details = {
                k: v
                for k, v in row.items()
                if k not in {"id", "object", "created", "owned_by"} and v is not None
            }
            if "model_ability" in details:
                details["model_ability"] = details["abilities"] = _abilities(row)
            found.append(DiscoveredModel(model=str(row["id"]), model_type=mapped, details=details))
        return found
