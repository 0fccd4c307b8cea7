"""Failure categories: what the user must fix vs. what we must fix; each has its own exit code."""

from __future__ import annotations

import errno
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path


class UserError(Exception):
    """Bad input from the user or their data: the message is the whole story, no traceback."""

    exit_code = 2


class TokenRefused(UserError):
    """The platform answered 401 mid-run: the token expired or was revoked. Nothing more will
    get through, so the job stops trying and fails with this reason."""

    def __init__(self) -> None:
        super().__init__("the platform refused the API token (expired or revoked?)")


class PlatformError(Exception):
    """The platform refused or kept failing after retries (bad token, missing experiment...)."""

    exit_code = 3


class JobInterrupted(BaseException):
    """SIGTERM/SIGINT reached the job: a BaseException, so no `except Exception` can eat it.
    `at` is when (time.monotonic()): what the job stores before its SIGKILL counts from there."""

    def __init__(self, signal_name: str, at: float) -> None:
        super().__init__(signal_name)
        self.at = at

    @property
    def exit_code(self) -> int:
        """As a shell reports a process the signal ended: 143 for SIGTERM, 130 for SIGINT."""
        return 128 + signal.Signals[str(self)].value

    @property
    def reason(self) -> str:
        return f"stopped by {self}"


INTERNAL_ERROR_EXIT_CODE = 1


class DeployParityError(Exception):
    """The exported model does not score as the weights it came from: ours to fix, not the
    user's; the weights and the export are stored all the same."""

    exit_code = INTERNAL_ERROR_EXIT_CODE


# The machine's faults, not ours: what the user fixes (exit 2), said in one line.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOT_ALLOWED = {errno.EACCES, errno.EPERM, errno.EROFS}
_WRONG_KIND = {errno.EISDIR: "is a folder, not a file", errno.ENOTDIR: "is not a folder"}
# An error the job cannot explain, on a disk with less free than this, is put down to the disk:
# some writers (torch.save to a path) report a full disk without its errno.
LOW_SPACE_BYTES = 100_000_000


def user_facing(exc: Exception, folder: Path | None = None) -> UserError | PlatformError | None:
    """What to tell the user about `exc`, or None for a bug (to be shown with its traceback).

    A `UserError` or `PlatformError` as it is; an environment fault (a full disk, a read-only
    folder, a folder where a file should be) as a `UserError` naming the file or `folder`
    (where the command writes) and the space left there.
    """
    if isinstance(exc, (UserError, PlatformError)):
        return exc
    cause: BaseException | None = exc
    while cause is not None:  # `raise ... from` keeps the OSError a library wrapped
        if isinstance(cause, OSError) and (message := _os_fault(cause, folder)):
            return UserError(message)
        cause = cause.__cause__
    if folder is not None:
        free = _free_bytes(folder)
        if free is not None and free < LOW_SPACE_BYTES:
            return UserError(
                f"{type(exc).__name__}: {exc} with {_size(free)} free on the disk of {folder}: "
                "probably a full disk; free some space there or write elsewhere"
            )
    return None


def _os_fault(exc: OSError, folder: Path | None) -> str | None:
    path = Path(os.fsdecode(exc.filename)) if exc.filename is not None else None
    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))
    if exc.errno in _NO_SPACE:
        where = folder or (path.parent if path else Path.cwd())
        free = _free_bytes(where)
        space = f", {_size(free)} free" if free is not None else ""
        writing = f" writing {path}" if path else ""
        return (
            f"{reason}{writing} (the disk of {where}{space}): "
            "free some space there or write elsewhere"
        )
    if path is None:
        return None
    if exc.errno in _NOT_ALLOWED:
        return f"{path}: {reason}"
    if exc.errno in _WRONG_KIND:
        if exc.errno == errno.EISDIR and exc.filename2 is not None:  # a rename onto a folder
            path = Path(os.fsdecode(exc.filename2))
        return f"{path} {_WRONG_KIND[exc.errno]}"
    return None


def _free_bytes(folder: Path) -> int | None:
    """Free space for this user on the disk holding `folder` (its nearest existing parent)."""
    for candidate in (folder, *folder.absolute().parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def _size(count: float) -> str:
    """340 bytes, 12.5 MB, 1.2 GB: enough to weigh against a checkpoint."""
    for unit in ("bytes", "kB", "MB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what caused it, down the chain (a cycle is walked once)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
