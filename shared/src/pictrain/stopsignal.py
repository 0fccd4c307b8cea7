"""SIGTERM and SIGINT turned into `JobInterrupted`, and kept until the job has seen them.

The handler raises where Python happens to be. Inside a weakref callback, a `__del__` or a
garbage collection, Python prints "Exception ignored" and carries on: the stop would be lost
and training would run to its end (seen: a SIGTERM during training ended the job `done`). So
the first stop is also kept here, and training checks it between batches and the job between
its steps (`raise_if_stopped`); under DDP, where the job only waits for the launcher, the
relay stops the workers.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import sys
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
    for sig in previous:
        _off_the_alternate_stack(sig)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _received.clear()
        _deferring.clear()  # a hold an exception left unreleased


# Linux's SA_ONSTACK, and glibc's struct sigaction (x86-64 and aarch64 alike).
_SA_ONSTACK = 0x08000000


class _SigAction(ctypes.Structure):
    _fields_ = [
        ("sa_handler", ctypes.c_void_p),
        ("sa_mask", ctypes.c_ulong * (1024 // (8 * ctypes.sizeof(ctypes.c_ulong)))),
        ("sa_flags", ctypes.c_int),
        ("sa_restorer", ctypes.c_void_p),
    ]


def _off_the_alternate_stack(signum: int) -> None:
    """Python installs its handlers to run on the thread's alternate signal stack. OpenVINO's
    CPU plugin (and cuDNN) give the thread one of their own while a model lives and set back
    the one they found when it goes: models freed in another order than made (the exports'
    scoring, INT8 calibration) leave the thread on a freed stack, and the stop signal then
    kills the job with SIGSEGV instead of the failure path (measured: two OpenVINO models
    freed first-in first-out, then SIGINT). Handled on the thread's own stack, it cannot."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    action = _SigAction()
    if libc.sigaction(signum, None, ctypes.byref(action)) != 0:
        return
    action.sa_flags &= ~_SA_ONSTACK
    libc.sigaction(signum, ctypes.byref(action), None)
