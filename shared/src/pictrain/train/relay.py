"""Curves and checkpoints out of DDP workers, into the job's ordered sender, with a watchdog.

Under DDP ultralytics trains in worker processes started by `torch.distributed.run`; the job's
backend (its sender thread, its platform connection) lives in the parent, which only waits.
Rank 0 appends each point and checkpoint to a spool file in a folder the parent names
(`PICTRAIN_DDP_RELAY`); a thread in the parent reads it as it grows and calls the backend in
the same order, so curves arrive live and a checkpoint stays behind its epoch's points, as in
a single-process run.

The same thread watches progress: rank 0 touches the spool at every batch, validation step and
epoch end. NCCL's own timeout is hours (ultralytics sets 3); after
`PICTRAIN_DDP_STALL_MINUTES` minutes without a sign of life the watchdog stops the workers
and the job fails with that reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import psutil

from pictrain.envvars import DDP_RELAY, DDP_STALL_MINUTES
from pictrain.stopsignal import raise_if_stopped, stop_received

log = logging.getLogger(__name__)

DEFAULT_STALL_MINUTES = 30.0
EVENTS = "events.jsonl"
HEARTBEAT_S = 5.0  # rank 0 touches the spool at most this often
POLL_S = 0.5
STOP_GRACE_S = 15.0  # SIGTERM, then SIGKILL for workers stuck in a collective


class TrainingSink(Protocol):
    """What the training callbacks write to: the backend itself in one process, the spool in a
    DDP worker."""

    def log_series(self, name: str, step: int, value: float) -> None: ...

    def store_checkpoint(self, path: Path) -> None: ...


class TrainingStalled(RuntimeError):
    """The DDP workers stopped making progress; the watchdog stopped them."""


def stall_seconds() -> float:
    value = DDP_STALL_MINUTES.read()
    return 60 * (float(value) if value else DEFAULT_STALL_MINUTES)


class SpoolWriter:
    """Rank 0's side: one JSON line per point or checkpoint, flushed as written."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._events = folder / EVENTS
        self._last_beat = 0.0

    def log_series(self, name: str, step: int, value: float) -> None:
        self._write({"series": [name, step, value]})

    def store_checkpoint(self, path: Path) -> None:
        self._write({"checkpoint": str(path.resolve())})

    def alive(self) -> None:
        """A sign of progress for the parent's watchdog (the spool's modification time)."""
        now = time.monotonic()
        if now - self._last_beat >= HEARTBEAT_S:
            self._last_beat = now
            self._events.touch()

    def _write(self, record: dict[str, Any]) -> None:
        with self._events.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")


class Relay:
    """The parent's side, around the DDP launch: `with Relay(folder, backend): model.train(...)`.

    Sets PICTRAIN_DDP_RELAY for the workers it starts; hands every record to `backend` in order, and
    raises TrainingStalled when the watchdog stopped the workers. `steps` are the epochs relayed.
    """

    def __init__(self, folder: Path, backend: TrainingSink, stall_s: float | None = None) -> None:
        self.folder = folder
        self.steps: set[int] = set()
        self.stalled = False
        self._stopping = False  # for a stop signal the job could not raise (pictrain.stopsignal)
        self._backend = backend
        self._stall_s = stall_seconds() if stall_s is None else stall_s
        self._events = folder / EVENTS
        self._offset = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ddp-relay", daemon=True)
        self._me = psutil.Process()
        self._ours: dict[int, psutil.Process] = {}  # processes started under us since __enter__
        self._before: set[int] = set()
        self._saved_env: str | None = None

    def __enter__(self) -> Relay:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self._events.touch()
        self._started = time.time()
        self._before = {p.pid for p in self._me.children(recursive=True)}
        self._saved_env = DDP_RELAY.read()
        DDP_RELAY.set(str(self.folder.resolve()))
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._stop_workers()  # whatever outlived the launcher (it is killed on an exception)
        DDP_RELAY.set(self._saved_env)
        raise_if_stopped()
        if self.stalled:
            raise TrainingStalled(
                f"no training progress for {self._stall_s / 60:g} min (no batch, validation step "
                f"or epoch end from the DDP workers): a GPU or NCCL hang; stopped the workers "
                f"({DDP_STALL_MINUTES.name} sets the limit)"
            ) from exc
        if isinstance(exc, subprocess.CalledProcessError):
            raise RuntimeError(
                f"DDP training failed: its processes exited with status {exc.returncode} "
                "(their error is in the log above)"
            ) from exc

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self._pump()
            self._track()
            if stop_received() and not self._stopping:
                log.warning("stop signal received: stopping the DDP workers")
                self._stopping = True
                self._stop_workers()
            if not self.stalled and time.time() - self._last_progress() > self._stall_s:
                log.error("DDP workers silent for %.0f s: stopping them", self._stall_s)
                self.stalled = True
                self._stop_workers()
        self._pump()

    def _pump(self) -> None:
        """Dispatch every complete line written since the last call."""
        with self._events.open("rb") as stream:
            stream.seek(self._offset)
            chunk = stream.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.splitlines():
            try:
                self._dispatch(json.loads(line))
            except Exception:
                log.exception("could not relay %s", line[:200])

    def _dispatch(self, record: dict[str, Any]) -> None:
        if "series" in record:
            name, step, value = record["series"]
            self._backend.log_series(name, int(step), float(value))
            self.steps.add(int(step))
        elif "checkpoint" in record:
            self._backend.store_checkpoint(Path(record["checkpoint"]))
            log.info("checkpoint %s relayed from the DDP workers", Path(record["checkpoint"]).name)

    def _last_progress(self) -> float:
        try:
            return max(self._started, self._events.stat().st_mtime)
        except FileNotFoundError:
            return self._started

    def _track(self) -> None:
        """Remember the workers: killed, the launcher leaves them orphans we can no longer find."""
        with contextlib.suppress(psutil.Error):
            for process in self._me.children(recursive=True):
                if process.pid not in self._before:
                    self._ours.setdefault(process.pid, process)

    def _stop_workers(self) -> None:
        running = [p for p in self._ours.values() if p.is_running()]
        for process in running:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.terminate()
        _, alive = psutil.wait_procs(running, timeout=STOP_GRACE_S)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
