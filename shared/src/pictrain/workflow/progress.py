"""Progress of long work: a bar in a terminal, a line every few seconds anywhere else (CI logs,
`make` piped to a file), so a log never fills with redrawn bars."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

LINE_PERIOD_S = 10.0


class Progress:
    def __init__(
        self, total: int, what: str, unit: str = "file", stream: TextIO | None = None
    ) -> None:
        self.total, self.what, self.unit = total, what, unit
        self.done = 0
        self._stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._bar = None
        self._last_line = time.monotonic()
        if self._stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=what, unit=unit, file=self._stream)

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            if self._bar is not None:
                self._bar.update(n)
            elif time.monotonic() - self._last_line >= LINE_PERIOD_S:
                self._line()

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
            elif self.total:
                self._line()

    def _line(self) -> None:
        self._last_line = time.monotonic()
        print(f"{self.what}: {self.done}/{self.total} {self.unit}s", file=self._stream, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
