"""A background sender: the training loop hands over metric and artifact uploads and moves on."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pictrain.errors import TokenRefused
from pictrain.platform.retry import RetryPolicy, is_refused

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Task:
    what: str
    fn: Callable[[], object]
    data: bool


class BackgroundSender:
    """One worker thread, so calls reach the platform in the order they were made (curves are
    appended point by point). A call that still fails after retries is logged and never stops
    training; `failures` lists the ones that carried data (a status call is no data).

    A refused token (401) is final: what is queued is dropped, and `submit` raises TokenRefused
    from then on, so the job stops with that reason instead of queueing calls bound to fail."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._queue: queue.Queue[_Task | None] = queue.Queue()
        self.failures: list[str] = []
        self.refused = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._work, name="platform-sender", daemon=True)
        self._thread.start()

    def submit(self, what: str, fn: Callable[[], object], *, data: bool = True) -> None:
        if self.refused:
            raise TokenRefused()
        self._queue.put(_Task(what, fn, data))

    def drain(self) -> None:
        """Block until everything submitted so far has been sent (or has failed)."""
        self._queue.join()

    def close(self, timeout: float | None = None) -> None:
        """Send everything still queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.failures.append(f"{self._queue.qsize()} platform calls unsent after {timeout}s")

    def _work(self) -> None:
        while (task := self._queue.get()) is not None:
            try:
                if self.refused:
                    self.dropped += 1
                else:
                    self._policy.call(task.what, task.fn)
            except Exception as exc:
                if is_refused(exc):
                    log.error("could not %s: %s", task.what, TokenRefused())
                    self.refused = True
                elif task.data:
                    log.error("could not %s: %s", task.what, exc)
                    self.failures.append(task.what)
                else:
                    log.warning("could not %s: %s", task.what, exc)
            finally:
                self._queue.task_done()
        self._queue.task_done()
