"""Forward the job's log lines to the platform's job view, batched off the main thread."""

from __future__ import annotations

import logging
import threading
from typing import Any

from pictrain.platform.retry import RetryPolicy

log = logging.getLogger(__name__)

LOG_PART = "training"


class JobLogForwarder:
    """Lines are queued in memory and sent together every `period` seconds, so a chatty job
    costs one request per period, never one per line. Lines that cannot be sent after retries
    are dropped from the live view only: the full log file is stored at the end."""

    def __init__(self, job: Any, policy: RetryPolicy, period: float = 3.0) -> None:
        self._job = job
        self._policy = policy
        self._period = period
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.dropped = 0
        self._thread = threading.Thread(target=self._loop, name="job-log", daemon=True)
        self._thread.start()

    def add(self, lines: list[str]) -> None:
        with self._lock:
            self._lines.extend(lines)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._send(final=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._period):
            self._send(final=False)

    def _send(self, final: bool) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if not lines and not final:
            return
        try:
            self._policy.call(
                "send job logs", self._job.send_logging, "\n".join(lines), LOG_PART, final=final
            )
        except Exception as exc:
            self.dropped += len(lines)
            log.debug("job logs not sent: %s", exc)
