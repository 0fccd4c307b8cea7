"""Platform runs: the job works in a child process; this parent is what the platform's UI sees.

Being outside the job, the parent reports even a death the job cannot report itself (out of
memory, segfault, SIGKILL): it marks the job run RUNNING, streams the child's output to the
console, a log file and the job's live logs (progress bars collapsed), stores the log, and
marks the run SUCCEEDED or FAILED from the exit code, which it passes on. Why the job failed
comes from the run folder's status.json, never from its console.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from picsellia.types.enums import JobRunStatus, LogType

from pictrain.errors import JobInterrupted, PlatformError, UserError
from pictrain.platform.base import FAILURE_REASON_LOG, JOB_LOG_ARTIFACT
from pictrain.platform.connect import connect, find_experiment
from pictrain.platform.env import PicselliaContext
from pictrain.platform.joblog import JobLogForwarder
from pictrain.platform.logstream import LogLine, ProgressCollapser
from pictrain.platform.picsellia import EXPERIMENT_STATUS
from pictrain.platform.retry import BestEffort, RetryPolicy
from pictrain.redact import redact
from pictrain.runstatus import FAILURE_MARK, STATUS_FILE, JobStatus, read_status, write_status

log = logging.getLogger(__name__)

JOB_LOG_FILE = "job.log"
# The job view's lines, as the logging file Picsellia stores.
JOB_LOG_JSON = f"{JOB_LOG_ARTIFACT}.json"
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def supervise(
    child_argv: list[str], context: PicselliaContext, run_dir: Path, experiment: bool = True
) -> int:
    """`experiment`: the job trains one (its status is set too); a processing job has none."""
    stops = _StopSignals()
    previous = {sig: signal.signal(sig, stops.handle) for sig in FORWARDED_SIGNALS}
    try:
        return _supervise(child_argv, context, run_dir, stops, experiment)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _supervise(
    child_argv: list[str],
    context: PicselliaContext,
    run_dir: Path,
    stops: _StopSignals,
    with_experiment: bool,
) -> int:
    policy = RetryPolicy()
    call = BestEffort(policy)
    job, experiment = _connect(context, policy, call, with_experiment)
    if job is not None:
        call("mark the job run RUNNING", job.update_job_run_with_status, JobRunStatus.RUNNING)
    forwarder = JobLogForwarder(job, call) if job is not None else None
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / STATUS_FILE).unlink(missing_ok=True)  # an earlier attempt's, on a rerun
    log_file = run_dir / JOB_LOG_FILE
    # A terminal gets the live progress bars; `docker logs` and other pipes get the collapsed
    # lines, like the log file and the platform.
    raw_console = sys.stdout.isatty()
    with _LogFile(log_file) as sink:

        def emit(lines: list[LogLine]) -> None:
            # The token and presigned URLs never reach a file or the platform, whatever the
            # job printed.
            lines = [LogLine(redact(line.text), line.partial) for line in lines]
            text = "".join(f"{line.text}\n" for line in lines)
            sink.write(text)
            if not raw_console:
                sys.stdout.write(text)
                sys.stdout.flush()
            if forwarder is not None:
                forwarder.add(lines)

        if stops.received:  # stopped before the worker started: none is started
            stop = JobInterrupted(signal.Signals(stops.received[0]).name, time.monotonic())
            returned, reason = stop.exit_code, stop.reason
        else:
            returned, reason = _run_child(child_argv, emit, raw_console, stops), None
        code = 128 - returned if returned < 0 else returned  # a signal, as a shell reports it
        status = read_status(run_dir)
        if status is None or status.status is JobStatus.RUNNING:
            reason = reason or _death_reason(returned)
            code = code or 1
            status = write_status(run_dir, JobStatus.FAILED, reason, code)
            emit([LogLine(f"{FAILURE_MARK}{reason}")])
            if experiment is not None:
                call("log the failure", experiment.log, FAILURE_REASON_LOG, reason, LogType.VALUE)
        why = f": {status.reason}" if code and status.reason else ""
        emit([LogLine(f"job finished with exit code {code}{why}")])
    # What is left must land: more patience than the live calls had.
    call.policy = policy.patient()
    if forwarder is not None:
        forwarder.close(code, run_dir / JOB_LOG_JSON)
    if job is not None:
        run_status = JobRunStatus.SUCCEEDED if code == 0 else JobRunStatus.FAILED
        call(f"mark the job run {run_status.value}", job.update_job_run_with_status, run_status)
    if experiment is not None:
        call("store the job log", experiment.store, JOB_LOG_ARTIFACT, str(log_file))
        # Again, as Picsellia's own images end: a status call the job lost still lands.
        final = EXPERIMENT_STATUS[JobStatus.DONE if code == 0 else JobStatus.FAILED]
        call(f"set the experiment status to {final.value}", experiment.update, status=final)
    return code


def _death_reason(returned: int) -> str:
    """Why a job that wrote no final status ended (`returned` as Popen reports it)."""
    if returned < 0:
        reason = f"the job was killed by {signal.Signals(-returned).name}"
        return reason + (" (out of memory?)" if -returned == signal.SIGKILL else "")
    return f"the job ended with exit code {returned} without saying why (see the log above)"


class _StopSignals:
    """SIGTERM/SIGINT for the whole supervision. One that comes before the worker starts stops
    the job there (no worker is started); after, each goes to the worker once: a second SIGTERM
    (an impatient orchestrator) would kill the job while it uploads its weights and reports the
    failure. Until this handler is in place the default one kills the process."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._forwarded: set[int] = set()
        self._child: subprocess.Popen[bytes] | None = None

    def handle(self, signum: int, _frame: object) -> None:
        if signum not in self.received:
            self.received.append(signum)
            self._forward(signum)

    def started(self, child: subprocess.Popen[bytes]) -> None:
        """From here signals go to `child`; one that came while it started goes now."""
        self._child = child
        for signum in list(self.received):
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        # (a handler running between the test and the add is for another signal: `handle`
        # passes each signal here once)
        if self._child is not None and signum not in self._forwarded:
            self._forwarded.add(signum)
            self._child.send_signal(signum)


def _run_child(
    argv: list[str],
    emit: Callable[[list[LogLine]], None],
    raw_console: bool,
    stops: _StopSignals,
) -> int:
    """The worker in a session of its own: a signal sent to this process group (tini -g, a
    Ctrl-C) reaches the worker only through `stops`, once."""
    child = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    stops.started(child)
    collapser = ProgressCollapser()
    console = _RawConsole() if raw_console else None
    assert child.stdout is not None
    while chunk := os.read(child.stdout.fileno(), 1 << 16):
        text = chunk.decode("utf-8", "replace")
        if console is not None:
            console.write(text)
        emit(collapser.feed(text))
    emit(collapser.close())
    if console is not None:
        console.close()
    return child.wait()


class _LogFile:
    """job.log, written as lines come. A write the disk refuses (full) ends the file there, with
    one warning: the console and the platform still get every line, and the job its exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream: TextIO | None = path.open("w")

    def __enter__(self) -> _LogFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._close()

    def write(self, text: str) -> None:
        if self._stream is None:
            return
        try:
            self._stream.write(text)
            self._stream.flush()
        except OSError as exc:
            log.warning("%s ends here: %s", self.path, exc.strerror or exc)
            self._close()

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(OSError):  # what it still held is lost with the disk
                stream.close()


class _RawConsole:
    """The child's output as it comes, progress bars live, redacted like every other path: a
    secret split across two reads is held back until its line (or redraw) is complete."""

    HOLD_LIMIT = 1 << 16

    def __init__(self) -> None:
        self._held = ""

    def write(self, text: str) -> None:
        text = self._held + text
        cut = max(text.rfind("\n"), text.rfind("\r")) + 1
        if len(text) - cut > self.HOLD_LIMIT:
            cut = len(text)
        self._held = text[cut:]
        self._out(text[:cut])

    def close(self) -> None:
        self._out(self._held)
        self._held = ""

    @staticmethod
    def _out(text: str) -> None:
        if text:
            sys.stdout.write(redact(text))
            sys.stdout.flush()


def _connect(
    context: PicselliaContext, policy: RetryPolicy, call: BestEffort, with_experiment: bool
) -> tuple[Any, Any]:
    """The job and the experiment (found as the job finds it), each None when out of reach:
    the job still runs, only what the UI shows goes without it. The child reports a bad token
    or experiment itself."""
    try:
        client = connect(context, policy)
    except (UserError, PlatformError) as exc:
        log.warning("job logs will not reach the platform: %s", exc)
        return None, None
    job = call("find the job", client.get_job_by_id, context.job_id) if context.job_id else None
    if not with_experiment:
        return job, None
    try:
        experiment = find_experiment(client, context, policy.call)
    except Exception as exc:  # the worker fails the job with the reason
        log.warning("could not find the experiment: %s", (str(exc).splitlines() or [exc])[0])
        experiment = None
    return job, experiment
