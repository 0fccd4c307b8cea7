"""How fast this run's uploads go, measured on its own uploads: whether one more would be done
before a deadline (the SIGKILL that follows a SIGTERM)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class UploadMeter:
    """Bytes queued, and bytes sent over the seconds their calls took (round trips included,
    so the estimate errs on the slow side). An upload that never succeeds stays counted as
    queued: slower still."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sent = 0
        self._seconds = 0.0
        self._pending = 0

    def queued(self, size: int) -> None:
        with self._lock:
            self._pending += size

    def dropped(self, size: int) -> None:
        """A queued upload that will not happen (a newer checkpoint took its place)."""
        with self._lock:
            self._pending -= size

    def upload(self, path: Path, store: Callable[[], Any]) -> None:
        """Run `store` (one attempt at uploading `path`, queued before) and measure it."""
        size = path.stat().st_size
        start = self._clock()
        store()
        with self._lock:
            self._sent += size
            self._seconds += self._clock() - start
            self._pending -= size

    def seconds_for(self, size: int) -> float | None:
        """Seconds until `size` more bytes are sent after what is queued, or None before any
        upload was measured."""
        with self._lock:
            if not self._sent or self._seconds <= 0:
                return None
            return (self._pending + size) * self._seconds / self._sent
