"""JSON <-> runtime dataclasses, per model type: how an invocation's JSON input becomes an
adapter call, and what the call returned becomes the JSON fields stored with it. The job runner
uses it; the OpenAI-compatible gateway shares `chat_request` and the result shapes."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from config import errors
from providers.runtime import base as rt

# The largest audio file a transcription takes, on the API and the gateway alike (OpenAI's).
MAX_AUDIO_BYTES = 25 * 1024 * 1024


def chat_request(data: Mapping[str, Any]) -> rt.ChatRequest:
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


def run(
    adapter: rt.Adapter,
    model: str,
    kind: str,
    data: Mapping[str, Any],
    *,
    started: float,
    audio: bytes = b"",
) -> dict[str, Any]:
    """Make the call that `data` (an invocation's JSON input) asks of a `kind` model; returns the
    fields to store: result, usage, timings (and, for tts, the audio bytes under "audio")."""
    if kind == "llm":
        request = chat_request(data)
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
        heard = adapter.transcribe(
            model, audio, data.get("filename", "audio.wav"), data.get("language")
        )
        return {"result": {"text": heard.text}, "audio_seconds": heard.duration_seconds}
    if kind == "tts":
        speech = adapter.speak(
            model, data["text"], data.get("voice") or "", data.get("format") or "mp3"
        )
        return {
            "result": {"content_type": speech.content_type, "bytes": len(speech.audio)},
            "characters": speech.characters,
            "audio": speech.audio,
        }
    raise errors.InvalidInput(f"{kind} models cannot be invoked.", code="unsupported")


COMPLETION_RESERVE = 1024  # tokens held for an answer whose request sets no max_tokens


def _tokens(text: str) -> int:
    return max(rt.count_tokens(text), len(text.split()))


def estimate(kind: str, data: Mapping[str, Any]) -> int:
    """The most tokens a call may use, as well as can be told before it: what a quota holds."""
    if kind == "llm":
        return estimate_chat(chat_request(data))
    if kind == "text-embedding":
        return sum(_tokens(t) for t in data["texts"])
    if kind == "rerank":
        return _tokens(data["query"]) * len(data["documents"]) + sum(
            _tokens(d) for d in data["documents"]
        )
    return 0


def estimate_chat(request: rt.ChatRequest) -> int:
    """A chat's prompt tokens plus the most it may answer."""
    prompt = sum(_tokens(m.text()) for m in request.messages)
    parameters = request.parameters
    limit = parameters.get("max_completion_tokens") or parameters.get("max_tokens")
    return prompt + (int(limit) if limit else COMPLETION_RESERVE)


def tokens_used(fields: Mapping[str, Any]) -> int:
    return (fields.get("prompt_tokens") or 0) + (fields.get("completion_tokens") or 0)
