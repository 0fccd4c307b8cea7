"""Terminal output -> log lines: the platform's log view gets no progress-bar floods."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import NamedTuple

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class LogLine(NamedTuple):
    """One line of output. A `partial` one is a progress bar's state so far: whatever comes
    next (a newer state, or the finished line) redraws it in place where the view can."""

    text: str
    partial: bool = False


class ProgressCollapser:
    """A progress bar redraws one line with `\\r` many times a second (ultralytics does so even
    without a terminal). Keep each line's final state, plus the bar's current state at most once
    every `interval` seconds so a long epoch still shows progress."""

    def __init__(self, interval: float = 15.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._pending = ""
        self._last_partial = ""
        self._last_partial_at = clock()

    def feed(self, text: str) -> list[LogLine]:
        *complete, self._pending = (self._pending + text).split("\n")
        lines = [LogLine(_final_state(line)) for line in complete]
        self._pending = self._pending.rsplit("\r", 1)[-1]
        if lines:
            self._last_partial_at = self._clock()
        current = _ANSI.sub("", self._pending).rstrip()
        due = self._clock() - self._last_partial_at >= self._interval
        if current and due and current != self._last_partial:
            lines.append(LogLine(current, partial=True))
            self._last_partial, self._last_partial_at = current, self._clock()
        return [line for line in lines if line.text]

    def close(self) -> list[LogLine]:
        rest = _final_state(self._pending)
        self._pending = ""
        return [LogLine(rest)] if rest else []


def _final_state(line: str) -> str:
    return _ANSI.sub("", line.rsplit("\r", 1)[-1]).rstrip()
