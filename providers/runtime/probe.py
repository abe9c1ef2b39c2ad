"""Tiny inputs for validation probes: as cheap as a call can be and still prove it works."""

from __future__ import annotations

import io
import wave


def _silent_wav(seconds: float = 0.25, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


TINY_WAV = _silent_wav()
PING = "ping"
RERANK_DOCUMENTS = ("ping", "pong")
