"""What a backend said about a model (Xinference's abilities, a Replicate version's schema), kept
for a few minutes by the adapter that asked, so a call does not ask again each time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Memo(Generic[T]):
    def __init__(self, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._kept: dict[Hashable, tuple[float, T]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, fetch: Callable[[], T]) -> T:
        with self._lock:
            found = self._kept.get(key)
        if found is not None and found[0] > self._clock():
            return found[1]
        value = fetch()
        with self._lock:
            self._kept[key] = (self._clock() + self.ttl, value)
        return value
