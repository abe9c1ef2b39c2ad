"""A fake Xinference server: its model registry (`/v1/models`, `/v1/models/{uid}`,
`/v1/cluster/auth`) in front of the OpenAI-compatible inference routes of `OpenAIFake`, with
Xinference's own conventions:

- errors are FastAPI's `{"detail": ...}` (a list of `{loc, msg, type}` for a malformed body);
- auth is an optional Bearer key (`api_key=None` = auth off, as `xinference-local` without
  `--auth-config`); a missing or wrong key is 401 "Could not validate credentials";
- an unknown UID is 400 "Model not found in the model list, uid: …" on describe, 404 on the
  inference routes (`require_model`); a model of the wrong type is 500 "Model … is not for …"
  (inside a 200 stream as `data: {"error": …}` when streaming);
- SSE frames end with CRLF (sse-starlette), after a `: ping` comment, and close with `[DONE]`.

Checked by the official `xinference_client` (RESTfulClient) and `openai` clients in
tests/unit/runtime/test_xinference_fake.py.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from tests.fakes.base import Reply, Request, overlap_score, sse, text_in_wav, wav_with_text, words
from tests.fakes.openai_server import OpenAIFake
from tests.fakes.spec import FakeSpec, Refusal

TTS_FAMILIES = {"ChatTTS", "CosyVoice", "FishAudio"}
MEDIA_TYPES = {
    "aac": "audio/aac",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "pcm": "audio/pcm",
    "wav": "audio/wav",
    "webm": "audio/webm",
}

DEFAULT_MODELS: dict[str, dict[str, Any]] = {
    "qwen2.5-instruct": {
        "model_type": "LLM",
        "model_ability": ["generate", "chat", "tools"],
        "context_length": 32768,
    },
    "qwen2-vl-instruct": {
        "model_type": "LLM",
        "model_ability": ["chat", "vision"],
        "context_length": 32768,
    },
    "llama-2": {"model_type": "LLM", "model_ability": ["generate"], "context_length": 4096},
    "bge-m3": {"model_type": "embedding", "dimensions": 8, "max_tokens": 8192},
    "bge-reranker": {"model_type": "rerank"},
    "whisper-small": {
        "model_type": "audio",
        "model_family": "whisper",
        "model_ability": ["audio2text"],
    },
    "ChatTTS": {"model_type": "audio", "model_family": "ChatTTS", "model_ability": ["text2audio"]},
    "CosyVoice-300M-SFT": {
        "model_type": "audio",
        "model_family": "CosyVoice",
        "model_ability": ["text2audio"],
    },
    "sd-turbo": {"model_type": "image", "model_family": "stable_diffusion"},
}


# The speakers of CosyVoice-300M-SFT, in the order `list_avaliable_spks()` gives them.
COSYVOICE_SPEAKERS = ["中文女", "中文男", "日语男", "粤语女", "英文女", "英文男", "韩语女"]


def describe(uid: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The JSON `GET /v1/models/{uid}` answers: Xinference's `to_description()` per model type,
    with `spec` overriding the defaults."""
    kind = spec.get("model_type", "LLM")
    name = spec.get("model_name", uid)
    common = {"address": "127.0.0.1:40001", "accelerators": ["0"], "model_name": name}
    if kind == "LLM":
        base: dict[str, Any] = {
            "model_type": "LLM",
            **common,
            "model_lang": ["en", "zh"],
            "model_ability": ["generate", "chat"],
            "model_description": f"{name}, served by a fake Xinference",
            "model_format": "pytorch",
            "model_size_in_billions": 7,
            "model_family": name,
            "quantization": "none",
            "multimodal_projector": None,
            "model_hub": "huggingface",
            "revision": None,
            "context_length": 2048,
            "strict_system_first": False,
        }
    elif kind == "embedding":
        base = {
            "model_type": "embedding",
            **common,
            "model_engine": "sentence_transformers",
            "model_format": "pytorch",
            "dimensions": 8,
            "max_tokens": 512,
            "language": ["en", "zh"],
            "model_hub": "huggingface",
            "model_revision": None,
            "quantization": "none",
        }
    elif kind == "rerank":
        base = {
            "model_type": "rerank",
            **common,
            "type": "normal",
            "model_engine": "sentence_transformers",
            "model_format": "pytorch",
            "language": ["en", "zh"],
            "model_revision": None,
            "quantization": "none",
        }
    elif kind == "audio":
        base = {
            "model_type": "audio",
            **common,
            "model_family": "whisper",
            "model_revision": None,
            "model_ability": ["audio2text"],
            "model_engine": None,
        }
    else:  # image, video, ...
        base = {
            "model_type": kind,
            **common,
            "model_engine": None,
            "model_family": "stable_diffusion",
            "model_revision": None,
            "model_ability": ["text2image"],
            "controlnet": None,
        }
    return {**base, **spec, "replica": spec.get("replica", 1)}


def vector(text: str, dimensions: int) -> list[float]:
    """A stable vector of any size for a text."""
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        values.extend(round(b / 255, 6) for b in digest)
        block += 1
    return values[:dimensions]


def crlf(frames: Iterable[bytes]) -> Iterator[bytes]:
    """sse-starlette's framing: a ping comment first, every line ending in CRLF."""
    yield f": ping - {time.strftime('%Y-%m-%d %H:%M:%S')}\r\n\r\n".encode()
    for frame in frames:
        yield frame.replace(b"\n", b"\r\n")


class XinferenceFake(OpenAIFake):
    """`models` maps a model UID to (part of) its description: `model_type` ("LLM", "embedding",
    "rerank", "audio", "image"), `model_ability`, `model_family`, `context_length`,
    `dimensions`, ...; the rest is filled in as a real server reports it."""

    def __init__(
        self,
        api_key: str | None = "fake-key",
        models: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(api_key, models={})
        self.models = {
            uid: describe(uid, dict(spec)) for uid, spec in (models or DEFAULT_MODELS).items()
        }
        self.route("GET", "/v1/cluster/auth", self.cluster_auth)
        self.route("GET", "/v1/models/{model_uid}", self.describe_model)

    # --- Xinference conventions ---------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        if request.path == "/v1/cluster/auth":  # public: clients ask it before logging in
            return True
        return super().authorized(request)

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        return Reply(status, {"detail": message})

    def unauthorized(self) -> Reply:
        return Reply(
            401, {"detail": "Could not validate credentials"}, {"WWW-Authenticate": "Bearer"}
        )

    def invalid(self, field: str) -> Reply:
        """FastAPI's 422 for a body that misses a required field."""
        return Reply(
            422,
            {"detail": [{"loc": ["body", field], "msg": "field required", "type": "missing"}]},
        )

    def unknown_model(self, model: str) -> Reply | None:
        if model in self.models:
            return None
        return self.error(404, f"Model not found in the model list, uid: {model}")

    def kind(self, uid: str) -> str:
        """Our model type for a served UID ("" when no endpoint serves it)."""
        desc = self.models[uid]
        abilities = desc.get("model_ability") or []
        if desc["model_type"] == "LLM":
            return "chat" if "chat" in abilities else "generate"
        if desc["model_type"] == "audio":
            tts = desc.get("model_family") in TTS_FAMILIES or {
                "text2audio",
                "text-to-audio",
            } & set(abilities)
            return "tts" if tts else "speech2text"
        return {"embedding": "embedding", "rerank": "rerank"}.get(desc["model_type"], "")

    def not_for(self, uid: str, what: str) -> str:
        """The server's AttributeError text (it prints the model's spec)."""
        desc = self.models[uid]
        spec = f"model_name='{desc['model_name']}' model_type='{desc['model_type']}'"
        return f"Model {spec} is not for {what}."

    def tool_families(self) -> set[str]:
        return {
            d["model_family"]
            for d in self.models.values()
            if d["model_type"] == "LLM" and "tools" in (d.get("model_ability") or [])
        }

    # --- registry -----------------------------------------------------------------------------

    def cluster_auth(self, request: Request) -> Reply:
        return Reply(200, {"auth": self.api_key is not None})

    def describe_model(self, request: Request) -> Reply:
        uid = unquote(request.params["model_uid"])
        if uid not in self.models:
            return self.error(400, f"Model not found in the model list, uid: {uid}")
        return Reply(200, self.models[uid])

    def list_models(self, request: Request) -> Reply:
        return Reply(
            200,
            {
                "object": "list",
                "data": [
                    {"id": uid, "object": "model", "created": 0, "owned_by": "xinference", **desc}
                    for uid, desc in self.models.items()
                ],
            },
        )

    # --- inference ----------------------------------------------------------------------------

    def chat(self, request: Request) -> Reply:
        body = request.json() or {}
        uid = body.get("model", "")
        if not uid:
            return self.invalid("model")
        if not body.get("messages"):
            return self.error(400, "Invalid input. Please specify the prompt.")
        missing = self.unknown_model(uid)
        if missing:
            return missing
        families = self.tool_families()
        if body.get("tools") and self.models[uid].get("model_family") not in families:
            return self.error(400, f"Only {families} support tool calls")
        if self.kind(uid) != "chat":
            message = self.not_for(uid, "chat")
            if body.get("stream"):  # the stream has started: the error is an event
                return Reply(
                    stream=crlf(sse([{"error": message}], done=False)),
                    content_type="text/event-stream; charset=utf-8",
                )
            return self.error(500, message)
        reply = super().chat(request)
        if reply.stream is not None:
            reply.stream = crlf(reply.stream)
            reply.content_type = "text/event-stream; charset=utf-8"
        return reply

    def complete(self, request: Request) -> Reply:
        """/v1/completions (xinference/api/restful_api.py `create_completion`): the body is
        parsed inside the handler, so a missing field is a plain-text 500; an unknown UID is
        `require_model`'s 404; a model without the `generate` ability fails in its actor
        (core/model.py: "Model ... is not for generate."), as a 500 or a stream's error event."""
        body = request.json() or {}
        for field in ("model", "prompt"):
            if field not in body:
                return Reply(
                    500,
                    b"Internal Server Error: 1 validation error for CreateCompletionRequest\n"
                    + f"{field}\n  field required (type=value_error.missing)".encode(),
                    content_type="text/plain; charset=utf-8",
                )
        uid = body["model"]
        missing = self.unknown_model(uid)
        if missing:
            return missing
        desc = self.models[uid]
        if desc["model_type"] != "LLM" or "generate" not in (desc.get("model_ability") or []):
            message = self.not_for(uid, "generate")
            if body.get("stream"):  # the stream has started: the error is an event
                return Reply(
                    stream=crlf(sse([{"error": message}], done=False)),
                    content_type="text/event-stream; charset=utf-8",
                )
            return self.error(500, message)
        reply = super().complete(request)
        if reply.stream is not None:
            reply.stream = crlf(reply.stream)
            reply.content_type = "text/event-stream; charset=utf-8"
        return reply

    def embeddings(self, request: Request) -> Reply:
        body = request.json() or {}
        uid = body.get("model", "")
        if not uid or "input" not in body:
            return self.invalid("model" if not uid else "input")
        missing = self.unknown_model(uid)
        if missing:
            return missing
        if self.kind(uid) != "embedding":
            return self.error(500, self.not_for(uid, "creating embedding"))
        texts = body["input"]
        texts = [texts] if isinstance(texts, str) else texts
        if not texts:
            return self.error(500, "Input must not be empty")
        dimensions = int(self.models[uid].get("dimensions") or 8)
        tokens = sum(words(t) for t in texts)
        return Reply(
            200,
            {
                "object": "list",
                "model": uid,
                "data": [
                    {"index": i, "object": "embedding", "embedding": vector(t, dimensions)}
                    for i, t in enumerate(texts)
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def rerank(self, request: Request) -> Reply:
        body = request.json() or {}
        for field in ("model", "query", "documents"):
            if field not in body:
                return self.invalid(field)
        uid = body["model"]
        missing = self.unknown_model(uid)
        if missing:
            return missing
        if self.kind(uid) != "rerank":
            return self.error(500, self.not_for(uid, "reranking"))
        documents = body["documents"]
        ranked = sorted(
            (
                {
                    "index": i,
                    "relevance_score": overlap_score(body["query"], d),
                    "document": {"text": d} if body.get("return_documents") else None,
                }
                for i, d in enumerate(documents)
            ),
            key=lambda hit: -hit["relevance_score"],
        )
        if body.get("top_n"):
            ranked = ranked[: body["top_n"]]
        tokens = words(body["query"]) * len(documents) + sum(words(d) for d in documents)
        return Reply(
            200,
            {
                "id": str(uuid.uuid4()),
                "results": ranked,
                "meta": {
                    "api_version": None,
                    "billed_units": None,
                    "tokens": {"input_tokens": tokens, "output_tokens": tokens},
                    "warnings": None,
                },
            },
        )

    def transcribe(self, request: Request) -> Reply:
        fields, files = request.form()
        uid = fields.get("model", "")
        if not uid or "file" not in files:
            return self.invalid("model" if not uid else "file")
        missing = self.unknown_model(uid)
        if missing:
            return missing
        if self.kind(uid) != "speech2text":
            return self.error(500, self.not_for(uid, "creating transcriptions"))
        return Reply(200, {"text": text_in_wav(files["file"][1]) or "(silence)"})

    def speech(self, request: Request) -> Reply:
        body = request.json() or {}
        for field in ("model", "input"):
            if field not in body:
                return self.invalid(field)
        uid = body["model"]
        missing = self.unknown_model(uid)
        if missing:
            return missing
        if self.kind(uid) != "tts":
            return self.error(500, self.not_for(uid, "creating speech"))
        voice = body.get("voice") or ""
        if self.models[uid].get("model_family") == "CosyVoice":
            # xinference/model/audio/cosyvoice.py: no voice is the first speaker; another name
            # fails its assertion, which the REST layer answers as a 500.
            if voice and voice not in COSYVOICE_SPEAKERS:
                return self.error(
                    500,
                    f"Invalid voice {voice}, CosyVoice available speakers: {COSYVOICE_SPEAKERS}",
                )
            voice = voice or COSYVOICE_SPEAKERS[0]
        audio_format = str(body.get("response_format") or "mp3").lower()
        return Reply(
            200,
            wav_with_text(f"{voice or 'default'}: {body['input']}"),
            content_type=MEDIA_TYPES.get(audio_format, "application/octet-stream"),
        )


_KINDS = {
    "llm": "qwen2.5-instruct",
    "text-embedding": "bge-m3",
    "rerank": "bge-reranker",
    "speech2text": "whisper-small",
    "tts": "ChatTTS",
}


def _serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> XinferenceFake:
    """The form's model UID, served as the type the walk calls it as."""
    ((kind, _),) = models.items()
    return XinferenceFake(
        api_key=credentials.get("api_key") or None,
        models={credentials["model_uid"]: dict(DEFAULT_MODELS[_KINDS[kind]])},
    )


# The walk's model UID (the form's `model_uid`): the fake serves it, whatever the model's name.
UID = "walk-model-uid"
HI = {"model": UID, "messages": [{"role": "user", "content": "hi"}]}
# Sources: xinference/api/restful_api.py (create_chat_completion, create_completion,
# create_embedding), api/utils.py `require_model` (an unknown UID: 404 "Model not found in the
# model list, uid: ..."), core/model.py (a model lacking an ability: "... is not for generate.").
REFUSALS = (
    Refusal(
        "a wrong key",
        "/v1/chat/completions",
        HI,
        status=401,
        says="Could not validate credentials",
        headers={"Authorization": "Bearer wrong"},
    ),
    Refusal(
        "an unknown uid",
        "/v1/chat/completions",
        {**HI, "model": "no-such-uid"},
        status=404,
        says="Model not found in the model list, uid: no-such-uid",
    ),
    Refusal(
        "no messages",
        "/v1/chat/completions",
        {"model": UID, "messages": []},
        says="Invalid input. Please specify the prompt.",
    ),
    Refusal(
        "an unknown uid on /v1/completions",
        "/v1/completions",
        {"model": "no-such-uid", "prompt": "hi"},
        status=404,
        says="Model not found in the model list, uid: no-such-uid",
    ),
    Refusal(
        "no prompt on /v1/completions",
        "/v1/completions",
        {"model": UID},
        status=500,
        says="prompt\n  field required",
    ),
    Refusal(
        "a model that cannot generate on /v1/completions",
        "/v1/completions",
        {"model": UID, "prompt": "hi"},
        status=500,
        says="is not for generate",
        model_type="text-embedding",
    ),
    Refusal(
        "an embedding without input",
        "/v1/embeddings",
        {"model": UID},
        status=422,
        says="field required",
        model_type="text-embedding",
    ),
)

SPEC = FakeSpec(
    "xinference",
    client="xinference-client",
    serve=_serve,
    samples=lambda: {"model_uid": UID},
    refusals=REFUSALS,
)
