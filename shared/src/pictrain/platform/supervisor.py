"""Platform runs: the job works in a child process; this parent is what the platform's UI sees.

Being outside the job, the parent reports even a death the job cannot report itself (out of
memory, segfault, SIGKILL): it marks the job run RUNNING, streams the child's output to the
console, a log file and the job's live logs (progress bars collapsed), stores the log file,
and marks the run SUCCEEDED or FAILED from the exit code, which it passes on.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from picsellia.types.enums import JobRunStatus, LogType
from picsellia.types.enums import JobStatus as ExperimentStatus

from pictrain.errors import PlatformError, UserError
from pictrain.platform.base import FAILURE_REASON_LOG
from pictrain.platform.connect import connect
from pictrain.platform.env import PicselliaContext
from pictrain.platform.joblog import JobLogForwarder
from pictrain.platform.logstream import ProgressCollapser
from pictrain.platform.retry import RetryPolicy

log = logging.getLogger(__name__)

REDACTED = "***"
FAILURE_MARK = "FAILED: "  # how the job states its failure reason (pictrain.job)


def supervise(child_argv: list[str], context: PicselliaContext, log_file: Path) -> int:
    policy = RetryPolicy()
    client, job = _connect(context, policy)
    if job is not None:
        _try(
            policy, "mark the job run RUNNING", job.update_job_run_with_status, JobRunStatus.RUNNING
        )
    forwarder = JobLogForwarder(job, policy) if job is not None else None
    log_file.parent.mkdir(parents=True, exist_ok=True)
    secret = context.api_token.get_secret_value()
    # A terminal gets the live progress bars; `docker logs` and other pipes get the collapsed
    # lines, like the log file and the platform.
    raw_console = sys.stdout.isatty()
    failure: list[str] = []  # the job's own "FAILED: <reason>" line, repeated last
    with log_file.open("w") as sink:

        def emit(lines: list[str]) -> None:
            failure.extend(
                line[line.find(FAILURE_MARK) :] for line in lines if FAILURE_MARK in line
            )
            # The token must never reach a file or the platform, whatever the job printed.
            text = "".join(f"{line.replace(secret, REDACTED)}\n" for line in lines)
            sink.write(text)
            sink.flush()
            if not raw_console:
                sys.stdout.write(text)
                sys.stdout.flush()
            if forwarder is not None:
                forwarder.add(text.splitlines())

        code = _run_child(child_argv, emit, raw_console)
        if code < 0:
            reason = f"the job was killed by {signal.Signals(-code).name}"
            if -code == signal.SIGKILL:
                reason += " (out of memory?)"
            emit([f"{FAILURE_MARK}{reason}"])
            _report_death(client, context, policy.patient(), reason)
            code = 128 - code
        why = f": {failure[-1]}" if code and failure else ""
        emit([f"job finished with exit code {code}{why}"])
    if job is not None and forwarder is not None:
        forwarder.close()
        patient = policy.patient()
        _try(patient, "store the log file", job.store_logging_file, str(log_file))
        status = JobRunStatus.SUCCEEDED if code == 0 else JobRunStatus.FAILED
        _try(patient, f"mark the job run {status}", job.update_job_run_with_status, status)
    return code


def _run_child(argv: list[str], emit: Any, raw_console: bool) -> int:
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    forwarded: set[int] = set()

    def forward(signum: int, _frame: object) -> None:
        """Once per signal: a second SIGTERM (tini -g, an impatient orchestrator) would kill
        the job while it uploads its weights and reports the failure."""
        if signum not in forwarded:
            forwarded.add(signum)
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    collapser = ProgressCollapser()
    assert child.stdout is not None
    try:
        while chunk := os.read(child.stdout.fileno(), 1 << 16):
            if raw_console:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            emit(collapser.feed(chunk.decode("utf-8", "replace")))
        emit(collapser.close())
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _connect(context: PicselliaContext, policy: RetryPolicy) -> tuple[Any, Any]:
    """The job handle; without one (no job id, platform down) the job still runs, only the
    live job view goes without logs. The child reports a bad token or experiment itself."""
    try:
        client = connect(context, policy)
    except (UserError, PlatformError) as exc:
        log.warning("job logs will not reach the platform: %s", exc)
        return None, None
    if not context.job_id:
        return client, None
    job = _try(policy, "find the job", client.get_job_by_id, context.job_id)
    return client, job


def _report_death(client: Any, context: PicselliaContext, policy: RetryPolicy, reason: str) -> None:
    if client is None or not context.experiment_id:
        return
    experiment = _try(
        policy, "find the experiment", client.get_experiment_by_id, context.experiment_id
    )
    if experiment is not None:
        _try(policy, "log the failure", experiment.log, FAILURE_REASON_LOG, reason, LogType.VALUE)
        _try(
            policy,
            "mark the experiment FAILED",
            experiment.update_job_status,
            ExperimentStatus.FAILED,
        )


def _try(policy: RetryPolicy, what: str, fn: Any, *args: Any) -> Any:
    try:
        return policy.call(what, fn, *args)
    except Exception as exc:
        log.warning("could not %s: %s", what, str(exc).splitlines()[0] if str(exc) else exc)
        return None
