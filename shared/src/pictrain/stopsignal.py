"""SIGTERM and SIGINT turned into `JobInterrupted`, and kept until the job has seen them.

The handler raises where Python happens to be. Inside a weakref callback, a `__del__` or a
garbage collection, Python prints "Exception ignored" and carries on: the stop would be lost
and training would run to its end (seen: a SIGTERM during training ended the job `done`). So
the first stop is also kept here, and training checks it between batches and the job between
its steps (`raise_if_stopped`); under DDP, where the job only waits for the launcher, the
relay stops the workers.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from pictrain.errors import JobInterrupted

log = logging.getLogger(__name__)

_received: list[JobInterrupted] = []  # the first stop of the job running in this process
_deferring: list[None] = []  # one entry per `hold` not yet released


def stop_received() -> bool:
    """Whether a stop came, for threads that cannot raise into the job (the DDP relay)."""
    return bool(_received)


def raise_if_stopped() -> None:
    """Raise the stop a handler raised where Python swallowed it; nothing otherwise."""
    if _received:
        raise _received[0]


def hold() -> None:
    """From here to `release`, a stop is kept, not raised: work a stop must not cut in two
    (an epoch's last.pt saved and tagged with its origin, then its curve points queued: cut
    between them, the failure path would store a checkpoint no relaunch resumes, or one
    ahead of its curves, whose resume leaves a hole in them)."""
    _deferring.append(None)


def release() -> None:
    """The end of a `hold` (none: nothing to end); a stop that came meanwhile is raised now."""
    if _deferring:
        _deferring.pop()
    if not _deferring:
        raise_if_stopped()


@contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGTERM (docker stop, platform abort) into an exception so the failure path runs.

    Only the first: the handler stays for the whole run, failure path included, so a repeated
    SIGTERM can neither interrupt the upload of the weights nor kill the job before it reports.
    A second Ctrl-C (SIGINT) is someone at a terminal who wants out now: it forces the way out.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if _received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if _received:
            log.warning("%s again: still storing what was trained before stopping", name)
            return
        _received.append(JobInterrupted(name, time.monotonic()))
        if not _deferring:
            raise _received[0]

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _received.clear()
        _deferring.clear()  # a hold an exception left unreleased
