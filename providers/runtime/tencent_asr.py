"""Tencent Cloud ASR flash recognition (录音文件识别极速版): POST
{base}/asr/flash/v1/<appid>?<query> with the audio bytes as the body, signed per request with
HMAC-SHA1 (not TC3).

Credentials: `app_id` (a number, in the path), `secret_id` (in the query), `secret_key` (signs).
Options: `path` (default /asr/flash/v1/{app_id}), `engine_type` (default 16k_zh; a request's
language picks the 16k engine of that language when there is one).

The query carries secretid, a timestamp (refused when more than three minutes off), engine_type,
voice_format (from the file's name, else its first bytes) and the recognition switches Dify's
plugin and Tencent's speech SDK send. The signature is base64(HMAC-SHA1(secret_key, "POST" + host +
path + "?" + the query sorted by name, values unencoded)) in the `Authorization` header.

Replies are HTTP 200 JSON `{code, message, request_id, audio_duration (ms), flash_result[{text}]}`;
a non-zero code is an error (4002 bad credentials, 4006 too many at once, 5001 overloaded, ...).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from config import errors
from providers.runtime.base import Adapter, Transcription
from providers.runtime.http import Response
from providers.runtime.hunyuan import canonical_host, read_json, retry_answered_errors

PATH = "/asr/flash/v1/{app_id}"
ENGINE_TYPE = "16k_zh"
# What Dify's flash_recognizer.py (after Tencent's speech SDK) sends beside the required fields;
# each is the API's documented default.
SWITCHES = {
    "convert_num_mode": 1,
    "filter_dirty": 0,
    "filter_modal": 0,
    "filter_punc": 0,
    "first_channel_only": 1,
    "reinforce_hotword": 0,
    "sentence_max_length": 0,
    "speaker_diarization": 0,
    "word_info": 0,
}
VOICE_FORMATS = {
    "wav": "wav", "pcm": "pcm", "mp3": "mp3", "m4a": "m4a", "aac": "aac", "amr": "amr",
    "ogg": "ogg-opus", "opus": "ogg-opus", "speex": "speex", "spx": "speex", "silk": "silk",
}  # fmt: skip
MAGIC = ((b"RIFF", "wav"), (b"ID3", "mp3"), (b"\xff\xfb", "mp3"), (b"\xff\xf3", "mp3"),
         (b"OggS", "ogg-opus"), (b"#!AMR", "amr"), (b"#!SILK", "silk"))  # fmt: skip
# Languages with a 16k engine of their own (the engine_type list of the API document).
LANGUAGES = {
    "zh", "en", "yue", "ja", "ko", "vi", "ms", "id", "fil", "th", "pt", "tr", "ar", "es", "hi",
    "fr", "de",
}  # fmt: skip
# The API's error codes -> our class. 4003: ASR is not enabled for the APPID.
ERROR_CODES: dict[int, type[errors.UpstreamError]] = {
    4001: errors.UpstreamBadRequest,
    4002: errors.UpstreamAuth,
    4003: errors.UpstreamAuth,
    4004: errors.UpstreamQuota,
    4005: errors.UpstreamQuota,
    4006: errors.UpstreamRateLimited,
    4007: errors.UpstreamBadRequest,
    4008: errors.UpstreamTimeout,
    4009: errors.UpstreamConnection,
    4010: errors.UpstreamBadRequest,
    4011: errors.UpstreamBadRequest,
    4012: errors.UpstreamBadRequest,
    5001: errors.UpstreamUnavailable,
    5002: errors.UpstreamUnavailable,
    5003: errors.UpstreamTimeout,
}


def flash_signature(secret_key: str, method: str, host: str, path: str, query: str) -> str:
    """base64(HMAC-SHA1(secret_key, method + host + path + "?" + query))."""
    text = f"{method.upper()}{host}{path}?{query}"
    return base64.b64encode(
        hmac.new(secret_key.encode(), text.encode(), hashlib.sha1).digest()
    ).decode()


def sorted_query(query: str) -> str:
    """The query as the signature reads it: sorted by name, values decoded."""
    return "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(query, keep_blank_values=True)))


def error_class(code: Any) -> type[errors.UpstreamError]:
    try:
        return ERROR_CODES.get(int(code), errors.UpstreamBadRequest)
    except (TypeError, ValueError):
        return errors.UpstreamUnavailable


def voice_format(audio: bytes, filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension in VOICE_FORMATS:
        return VOICE_FORMATS[extension]
    for magic, kind in MAGIC:
        if audio.startswith(magic):
            return kind
    raise errors.InvalidInput(
        f"Tencent ASR cannot tell the format of {filename!r}; send one of "
        f"{', '.join(sorted(set(VOICE_FORMATS.values())))}.",
        code="invalid",
    )


class TencentASRAdapter(Adapter):
    family = "tencent_asr"

    def sign(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        parts = urlsplit(url)
        signature = flash_signature(
            str(self.endpoint.credentials.get("secret_key") or ""),
            method,
            canonical_host(url),
            parts.path,
            sorted_query(parts.query),
        )
        return {**headers, "Authorization": signature}

    def error_message(self, body: Any) -> str:
        if isinstance(body, dict) and "code" in body:
            return f"{body.get('code')}: {body.get('message') or ''}"
        return super().error_message(body)

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        """A failed status whose body has the API's `code`: the code decides."""
        try:
            body = response.json()
        except ValueError:
            return failure
        if isinstance(body, dict) and body.get("code"):
            return error_class(body["code"])(failure.message)
        return failure

    def _path(self) -> str:
        app_id = str(self.endpoint.credentials.get("app_id") or "").strip()
        if not app_id.isdigit():
            raise errors.InvalidInput(
                "The Tencent Cloud APPID is a number (see the API key page of the console).",
                fields={"app_id": ["Enter the numeric APPID."]},
            )
        return str(self.endpoint.options.get("path") or PATH).format(app_id=app_id)

    def _query(self, audio: bytes, filename: str, language: str | None) -> dict[str, Any]:
        engine = str(self.endpoint.options.get("engine_type") or ENGINE_TYPE)
        wanted = (language or "").lower().replace("_", "-").split("-")[0]
        if wanted in LANGUAGES:
            engine = f"16k_{wanted}"
        fields: Mapping[str, Any] = {
            **SWITCHES,
            "engine_type": engine,
            "secretid": str(self.endpoint.credentials.get("secret_id") or ""),
            "timestamp": int(time.time()),
            "voice_format": voice_format(audio, filename),
        }
        return dict(sorted(fields.items()))

    def transcribe(
        self, model: str, audio: bytes, filename: str, language: str | None = None
    ) -> Transcription:
        path = self._path()
        query = self._query(audio, filename, language)

        def attempt() -> Any:
            response = self.http.request(
                "POST",
                path,
                data=audio,
                params=query,
                headers={"Content-Type": "application/octet-stream"},
            )
            reply = read_json(self, response)
            code = reply.get("code")
            if code not in (0, "0"):
                message = self.http.bounded(f"{code}: {reply.get('message') or ''}")
                return error_class(code)(message)
            return reply

        reply = retry_answered_errors(self, attempt)
        channels = reply.get("flash_result") or []
        duration = reply.get("audio_duration")
        return Transcription(
            text="\n".join(str(channel.get("text") or "") for channel in channels),
            duration_seconds=float(duration) / 1000 if duration is not None else None,
        )
