"""Tokens exchanged for credentials (Vertex AI's service account -> OAuth token, Wenxin's API key
and secret key -> access token, Zhipu's key -> a signed JWT), kept until shortly before they
expire.

In this process's memory only, never Redis: a token is as good as the credentials it came from.
Keyed by a digest of the credentials, so a key that changes gets a token of its own. One thread
fetches a missing token while the others for the same credentials wait for it."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

# A token is renewed this long before it expires (a call that starts on it must not end on a dead
# one), or at half its life when that is shorter.
MARGIN = 60.0
_SIZE = 1024


class TokenCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(*parts: str) -> str:
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()

    def get(self, key: str, fetch: Callable[[], tuple[str, float]]) -> str:
        """The token under `key`, from `fetch() -> (token, lifetime in seconds)` when there is
        none or it is about to expire."""
        found = self._fresh(key)
        if found is not None:
            return found
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            found = self._fresh(key)
            if found is not None:
                return found
            token, lifetime = fetch()
            renew_at = self._clock() + max(lifetime - MARGIN, lifetime / 2)
            with self._lock:
                self._tokens[key] = (token, renew_at)
                self._tokens.move_to_end(key)
                while len(self._tokens) > _SIZE:
                    dropped, _ = self._tokens.popitem(last=False)
                    self._locks.pop(dropped, None)
            return token

    def forget(self, key: str) -> None:
        """Drop a token the backend refused (revoked, or expired early)."""
        with self._lock:
            self._tokens.pop(key, None)

    def _fresh(self, key: str) -> str | None:
        with self._lock:
            found = self._tokens.get(key)
        if found is None or self._clock() >= found[1]:
            return None
        return found[0]


TOKENS = TokenCache()
