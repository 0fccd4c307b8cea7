"""`status.json`: how a run ended, as a file every run folder holds, whatever the backend.

The job writes it when it starts and when it ends; the command line writes it for a failure
before the job starts; the supervisor reads it (never the job's console) to say why a job
failed, and writes it for a worker that died without a word (out of memory, SIGKILL).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from pictrain.redact import redact

STATUS_FILE = "status.json"
FAILURE_MARK = "FAILED: "  # the job's last console line on failure, for people reading logs

log = logging.getLogger("pictrain")


class JobStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class RunStatus(BaseModel):
    status: JobStatus
    reason: str | None = None
    exit_code: int | None = None
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def write_status(
    run_dir: Path, status: JobStatus, reason: str | None = None, exit_code: int | None = None
) -> RunStatus:
    """Replace the run's status atomically (a reader never sees half a file). Never raises: it
    is written on the way out of every failure, a full disk's included. There the file is
    overwritten in place (the space it holds is enough); where even that fails (a read-only
    folder) a warning says so, and the console and the platform still hear why."""
    record = RunStatus(
        status=status, reason=redact(reason) if reason else None, exit_code=exit_code
    )
    text = record.model_dump_json(indent=2) + "\n"
    staging = run_dir / f".{STATUS_FILE}.tmp"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        staging.write_text(text)
        staging.replace(run_dir / STATUS_FILE)
    except OSError as exc:
        with contextlib.suppress(OSError):
            staging.unlink(missing_ok=True)
        if not _overwrite(run_dir / STATUS_FILE, text):
            log.warning("%s not written: %s", run_dir / STATUS_FILE, exc.strerror or exc)
    return record


def _overwrite(path: Path, text: str) -> bool:
    """`text` over the file's own bytes, in the blocks it already holds: what a full disk
    still allows. False when there is no such file or it cannot be written either."""
    try:
        with path.open("r+b") as stream:
            stream.write(text.encode())
            stream.truncate()
    except OSError:
        return False
    return True


def read_status(run_dir: Path) -> RunStatus | None:
    """The run's status, or None when there is none (or it cannot be read)."""
    try:
        return RunStatus.model_validate_json((run_dir / STATUS_FILE).read_text())
    except (OSError, ValidationError):
        return None


def report_failure(run_dir: Path, reason: str, exit_code: int) -> int:
    """One `FAILED: <reason>` line and the status file; the exit code, for returning. Never
    raises (`write_status`)."""
    reason = redact(reason)
    log.error("%s%s", FAILURE_MARK, reason)
    write_status(run_dir, JobStatus.FAILED, reason, exit_code)
    return exit_code
