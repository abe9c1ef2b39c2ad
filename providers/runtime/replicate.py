"""Replicate's HTTP API: models run as predictions.

    GET  /models/{owner}/{name}                  the model, its latest version's OpenAPI schema
    GET  /models/{owner}/{name}/versions/{id}    a pinned version
    POST /predictions {version, input}           (POST /models/{owner}/{name}/predictions {input}
                                                 for an official model without versions)
    GET  /predictions/{id}                       polled until succeeded | failed | canceled
    GET  urls.stream                             SSE: `output` (a token), `done`, `error`

A call reads the version's schema first (as Dify does; then kept five minutes): which inputs the
model takes decides the body (system_prompt, max_tokens or max_new_tokens, stop_sequences; text,
texts or inputs for embeddings). A prediction is created with `Prefer: wait` (answered when done,
up to 60 s and under the read timeout) and polled after that until it ends or the call's deadline
passes; a language model's output is a token list, its usage the prediction's metrics. A model
without a readable version (an official model run by name) is sent the inputs language models
share.

Credentials: `api_key` (Bearer), `model_version` (a version id; else the latest version; a model
named `owner/name:version` pins one too). Options: `poll_interval` (seconds, default 0.5).

Errors are RFC 7807 problems `{title, detail, status}`; a failed prediction is the model's error
(its `error` text), a canceled one unavailable.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

from config import errors
from providers.runtime.base import (
    Adapter,
    ChatChunk,
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    Message,
    TokenTally,
    Usage,
    Validation,
    count_tokens,
)
from providers.runtime.memo import Memo

TERMINAL = ("succeeded", "failed", "canceled")
POLL_INTERVAL = 0.5
MAX_WAIT = 60  # seconds `Prefer: wait` may hold a request
# ChatRequest.parameters -> the input names language models on Replicate use for them, in order.
PARAMETER_INPUTS = {
    "max_tokens": ("max_tokens", "max_new_tokens", "max_length"),
    "temperature": ("temperature",),
    "top_p": ("top_p",),
    "top_k": ("top_k",),
    "presence_penalty": ("presence_penalty",),
    "frequency_penalty": ("frequency_penalty",),
    "seed": ("seed",),
}
# What a model without a readable version (an official model run by name) is sent: the inputs
# Replicate's language models share.
DEFAULT_LLM_INPUTS = frozenset(
    {"prompt", "system_prompt", "max_tokens", "temperature", "top_p", "top_k", "stop_sequences"}
)
TEXT_INPUTS = ("texts", "text", "inputs")  # what embedding models take their text as
SAMPLING_INPUTS = ("temperature", "top_p", "top_k")  # Dify's sign of a language model


VERSION_TTL = 300.0  # seconds a version's schema is trusted


class ReplicateAdapter(Adapter):
    family = "replicate"
    error_field = "detail"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._versions: Memo[tuple[dict[str, Any], dict[str, Any]]] = Memo(VERSION_TTL)

    def auth_headers(self) -> dict[str, str]:
        token = self.endpoint.credentials.get("api_key")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def error_message(self, body: Any) -> str:
        if isinstance(body, dict) and ("detail" in body or "title" in body):
            return str(body.get("detail") or body.get("title"))
        return super().error_message(body)

    # --- the model and its version ------------------------------------------------------------

    def _parse(self, model: str) -> tuple[str, str, str]:
        """(owner, name, version): the version pinned in the name or the credentials, or ""."""
        name, _, pinned = model.strip().partition(":")
        owner, _, short = name.partition("/")
        if not owner or not short or "/" in short:
            raise errors.InvalidInput(
                "Name the Replicate model as owner/name (optionally owner/name:version).",
                code="invalid",
            )
        version = pinned or str(self.endpoint.credentials.get("model_version") or "").strip()
        return owner, short, version

    def _version(self, model: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the model, the version to run: pinned, else the latest; {} when it has none), as
        Replicate described them in the last five minutes."""
        return self._versions.get(self._parse(model), lambda: self._read_version(model))

    def _read_version(self, model: str) -> tuple[dict[str, Any], dict[str, Any]]:
        owner, name, version = self._parse(model)
        base = f"models/{quote(owner, safe='')}/{quote(name, safe='')}"
        info = self.http.json("GET", base)
        if version:
            return info, self.http.json("GET", f"{base}/versions/{quote(version, safe='')}")
        return info, info.get("latest_version") or {}

    @staticmethod
    def _inputs(version: dict[str, Any]) -> dict[str, Any]:
        schema = version.get("openapi_schema") or {}
        return ((schema.get("components") or {}).get("schemas") or {}).get("Input", {}).get(
            "properties"
        ) or {}

    # --- predictions --------------------------------------------------------------------------

    def _create(
        self, model: str, version: dict[str, Any], inputs: dict[str, Any], *, stream: bool
    ) -> dict[str, Any]:
        if version.get("id"):
            path, body = "predictions", {"version": version["id"], "input": inputs}
        else:  # an official model run by name
            owner, name, _ = self._parse(model)
            path, body = (
                f"models/{quote(owner, safe='')}/{quote(name, safe='')}/predictions",
                {"input": inputs},
            )
        if stream:
            body["stream"] = True
        headers = {} if stream else {"Prefer": self._prefer_wait()}
        return self.http.json("POST", path, json_body=body, headers=headers)

    def _prefer_wait(self) -> str:
        """Hold the request until the prediction ends, up to 60 s (the API's limit) and a few
        seconds under our read timeout, so a slow model is polled rather than cut off."""
        seconds = max(1, min(MAX_WAIT, int(self.endpoint.timeouts.read) - 5))
        return "wait" if seconds == MAX_WAIT else f"wait={seconds}"

    def _finished(self, prediction: dict[str, Any]) -> dict[str, Any]:
        """The prediction once it ends, polled until then within the call's deadline; a failed
        or canceled one raises."""
        deadline = time.monotonic() + self.endpoint.timeouts.total
        interval = float(self.endpoint.options.get("poll_interval") or POLL_INTERVAL)
        while prediction.get("status") not in TERMINAL:
            if time.monotonic() + interval > deadline:
                raise errors.UpstreamTimeout(
                    f"The prediction {prediction.get('id')} did not end within "
                    f"{self.endpoint.timeouts.total:g} s."
                )
            time.sleep(interval)
            prediction = self.http.json("GET", f"predictions/{quote(str(prediction['id']))}")
        self._check_ended(prediction.get("status"), prediction.get("error"))
        return prediction

    def _check_ended(self, status: Any, error: Any) -> None:
        if status == "failed":
            raise errors.UpstreamBadRequest(
                f"The model failed: {self.http.bounded(str(error or 'no detail'))}"
            )
        if status == "canceled":
            raise errors.UpstreamUnavailable("The prediction was canceled.")

    # --- chat ---------------------------------------------------------------------------------

    def chat_inputs(self, request: ChatRequest, accepted: dict[str, Any]) -> dict[str, Any]:
        """The prediction's input: prompt (and system_prompt where the model takes one) and the
        parameters the model's schema names."""
        turns = [m for m in request.messages if m.role != "system"]
        inputs: dict[str, Any] = {"prompt": _prompt(turns)}
        if request.system:
            if "system_prompt" in accepted:
                inputs["system_prompt"] = request.system
            else:
                inputs["prompt"] = f"{request.system}\n\n{inputs['prompt']}"
        for name, value in request.parameters.items():
            for candidate in PARAMETER_INPUTS.get(name, ()):
                if value is not None and candidate in accepted:
                    inputs[candidate] = value
                    break
        if request.stop and "stop_sequences" in accepted:
            inputs["stop_sequences"] = ",".join(request.stop)
        return inputs

    def _llm_inputs(self, version: dict[str, Any]) -> dict[str, Any]:
        return self._inputs(version) or {name: {} for name in DEFAULT_LLM_INPUTS}

    def chat(self, model: str, request: ChatRequest) -> ChatResult:
        _, version = self._version(model)
        inputs = self.chat_inputs(request, self._llm_inputs(version))
        prediction = self._finished(self._create(model, version, inputs, stream=False))
        output = prediction.get("output")
        text = "".join(str(t) for t in output) if isinstance(output, list) else str(output or "")
        text, stopped = _cut(text, request.stop)
        return ChatResult(
            text=text,
            finish_reason="stop" if stopped or not _capped(inputs, prediction) else "length",
            usage=_usage(prediction.get("metrics"), inputs, text),
            model=model,
        )

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatChunk]:
        _, version = self._version(model)
        inputs = self.chat_inputs(request, self._llm_inputs(version))
        prediction = self._create(model, version, inputs, stream=True)
        url = (prediction.get("urls") or {}).get("stream")
        if not url:  # a model without streaming: its whole output, once it ends
            result = self._finished(prediction)
            output = result.get("output")
            text = "".join(map(str, output)) if isinstance(output, list) else str(output or "")
            text, _ = _cut(text, request.stop)
            yield ChatChunk(text=text, finish_reason="stop",
                            usage=_usage(result.get("metrics"), inputs, text))  # fmt: skip
            return
        response = self.http.request(
            "GET", url, headers={"Accept": "text/event-stream", "Cache-Control": "no-store"},
            stream=True,
        )  # fmt: skip
        produced = ""
        events = self.http.sse(response)
        try:
            for event, data in events:
                if event == "output":
                    text, stopped = _cut(produced + data, request.stop)
                    piece, produced = text[len(produced) :], text
                    if piece:
                        yield ChatChunk(text=piece)
                    if stopped:
                        self._cancel(prediction)
                        break
                elif event == "error":
                    detail = self.http.bounded(self.error_message(_json(data)))
                    raise errors.UpstreamUnavailable(f"The model failed: {detail}")
                elif event == "done":
                    if data.strip() and _json(data).get("reason") == "canceled":
                        raise errors.UpstreamUnavailable("The prediction was canceled.")
                    break
            else:
                raise errors.UpstreamConnection("Replicate's stream ended before its done event.")
        finally:
            events.close()  # a stop sequence leaves the rest unread
        yield ChatChunk(finish_reason="stop", usage=_usage(None, inputs, produced))

    def _cancel(self, prediction: dict[str, Any]) -> None:
        """Stop a prediction whose output reached a stop sequence (it would bill on)."""
        cancel = (prediction.get("urls") or {}).get("cancel") or (
            f"predictions/{quote(str(prediction.get('id')))}/cancel"
        )
        self.http.request("POST", cancel)

    # --- embeddings ---------------------------------------------------------------------------

    def embed(self, model: str, texts: Sequence[str]) -> EmbeddingResult:
        _, version = self._version(model)
        key = _text_input(self._inputs(version))
        if key is None:
            raise errors.UpstreamBadRequest(
                f"{model} takes no text input ({', '.join(TEXT_INPUTS)}): not an embedding model."
            )
        batches = [list(texts)] if key == "texts" else [[t] for t in texts]
        vectors: list[tuple[float, ...]] = []
        tally = TokenTally()
        for batch in batches:
            value = json.dumps(batch) if key == "texts" else batch[0]
            prediction = self._finished(self._create(model, version, {key: value}, stream=False))
            rows = _vectors(prediction.get("output"))
            if len(rows) != len(batch):
                raise errors.UpstreamUnavailable(
                    f"Asked {model} for {len(batch)} embeddings, got {len(rows)}."
                )
            vectors.extend(rows)
            tally.add((prediction.get("metrics") or {}).get("input_token_count"), batch)
        return EmbeddingResult(tuple(vectors), tally.usage)

    # --- validation ---------------------------------------------------------------------------

    def validate(self, model: str, model_type: str) -> Validation:
        """The model's version must look like its type (Dify's checks: a language model takes
        temperature, top_p and top_k or says it is one; an embedding model takes text); an
        embedding model then embeds one phrase (a language model is not run: a cold start can
        take minutes)."""
        if model_type not in ("llm", "text-embedding"):
            raise self._unsupported(f"{model_type} models")
        info, version = self._version(model)
        inputs = self._inputs(version)
        details: dict[str, Any] = {"version": version.get("id"), "inputs": sorted(inputs)}
        if model_type == "llm":
            described = "language model" in str(info.get("description") or "").lower()
            if not described and not all(name in inputs for name in SAMPLING_INPUTS):
                raise errors.UpstreamBadRequest(
                    f"{model} is not a text generation model (its inputs have no "
                    f"{', '.join(SAMPLING_INPUTS)})."
                )
            return Validation(details)
        details["dimensions"] = self.embed(model, ["Hello world"]).dimensions
        return Validation(details)


def _prompt(turns: Sequence[Message]) -> str:
    """One turn is its text; a conversation is a transcript, ending on the assistant's cue."""
    if len(turns) == 1:
        return turns[0].text()
    lines = [f"{'Assistant' if m.role == 'assistant' else 'Human'}: {m.text()}" for m in turns]
    return "\n\n".join([*lines, "Assistant:"])


def _cut(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first stop sequence, and whether one was found."""
    found = [text.find(s) for s in stops if s and s in text]
    return (text[: min(found)], True) if found else (text, False)


def _capped(inputs: dict[str, Any], prediction: dict[str, Any]) -> bool:
    """Whether the output used the whole token allowance (the API reports no finish reason)."""
    limit = next((inputs[k] for k in PARAMETER_INPUTS["max_tokens"] if k in inputs), None)
    produced = (prediction.get("metrics") or {}).get("output_token_count")
    return limit is not None and produced is not None and int(produced) >= int(limit)


def _usage(metrics: Any, inputs: dict[str, Any], text: str) -> Usage:
    metrics = metrics if isinstance(metrics, dict) else {}
    if "input_token_count" in metrics or "output_token_count" in metrics:
        return Usage(metrics.get("input_token_count") or 0, metrics.get("output_token_count") or 0)
    prompt = count_tokens(str(inputs.get("prompt", ""))) + count_tokens(
        str(inputs.get("system_prompt", ""))
    )
    return Usage(prompt, count_tokens(text), counted=True)


def _text_input(inputs: dict[str, Any]) -> str | None:
    """The embedding model's text input, first by the schema's x-order."""
    keys = sorted(
        (name for name in inputs if name in TEXT_INPUTS),
        key=lambda name: (inputs[name].get("x-order", 0), TEXT_INPUTS.index(name)),
    )
    return keys[0] if keys else None


def _vectors(output: Any) -> list[tuple[float, ...]]:
    """Embeddings as models put them: [[float]], [{"embedding": [float]}] or one [float]."""
    if not isinstance(output, list) or not output:
        return []
    if all(isinstance(x, (int, float)) for x in output):
        return [tuple(float(x) for x in output)]
    rows = [row.get("embedding") if isinstance(row, dict) else row for row in output]
    return [tuple(float(x) for x in row) for row in rows]


def _json(data: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        return {"detail": data}
    return value if isinstance(value, dict) else {"detail": data}
