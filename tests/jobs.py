"""Helpers for tests that run jobs through a real worker."""

from __future__ import annotations

import time


def finished(client, url: str, seconds: float = 20.0) -> dict:
    """Poll a job's URL until it has succeeded or failed; fail the test if it takes too long."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["status"] in {"succeeded", "failed"}:
            return body
        time.sleep(0.05)
    raise AssertionError(f"{url} did not finish in {seconds} s: {body}")
