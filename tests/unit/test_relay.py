"""The DDP relay: rank 0's spool -> the backend, in order, while training runs; the watchdog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pictrain.envvars import DDP_RELAY
from pictrain.errors import JobInterrupted
from pictrain.platform.local import LocalBackend
from pictrain.stopsignal import signals_raise
from pictrain.train.relay import Relay, SpoolWriter, TrainingStalled
from tests.unit.swallowed_signal import SignalsItselfWhenCollected

# A worker stand-in: writes two epochs' points and a checkpoint to the spool the parent named,
# pausing between epochs (or, given a file, waiting after epoch 1 until the parent has it, and
# failing if it never comes), then (with "hang") sleeps in a child of its own, as a stuck rank
# would.
WORKER = """
import os, sys, time
from pathlib import Path
from pictrain.envvars import DDP_RELAY
from pictrain.train.relay import SpoolWriter

folder = Path(os.environ[DDP_RELAY.name])
writer = SpoolWriter(folder)
for step in (1, 2):
    writer.log_series("train/box_loss", step, 1.0 / step)
    writer.log_series("val/mAP50(B)", step, 0.1 * step)
    if step == 1:
        (folder / "epoch1.pt").write_bytes(b"weights")
        writer.store_checkpoint(folder / "epoch1.pt")
        if sys.argv[3] != "-":
            deadline = time.monotonic() + 30
            while not Path(sys.argv[3]).exists():
                if time.monotonic() > deadline:
                    sys.exit("epoch 1 did not reach the backend while the worker ran")
                time.sleep(0.05)
    time.sleep(float(sys.argv[1]))
if sys.argv[2] == "hang":
    import subprocess
    subprocess.run([sys.executable, "-c", "import time; time.sleep(300)"])
"""


class Recorder(LocalBackend):
    """The local backend, noting each call in order; a checkpoint stored leaves the file
    `checkpoint_stored` (the sign a waiting worker stand-in looks for)."""

    def __init__(self, root: Path) -> None:
        (root / "data").mkdir()
        super().__init__(root / "data", root / "run")
        self.calls: list[str] = []
        self.checkpoint_stored = root / "checkpoint-stored"

    def log_series(self, name: str, step: int, value: float) -> None:
        self.calls.append(f"{name}@{step}")
        super().log_series(name, step, value)

    def store_checkpoint(self, path: Path) -> None:
        self.calls.append(f"checkpoint {path.name}")
        super().store_checkpoint(path)
        self.checkpoint_stored.touch()


def worker(pause: float, then: str = "exit", wait_for: Path | None = None) -> list[str]:
    return [sys.executable, "-c", WORKER, str(pause), then, str(wait_for or "-")]


def test_points_and_checkpoints_reach_the_backend_in_order_while_the_worker_runs(
    tmp_path: Path,
) -> None:
    """The worker writes epoch 2 only once epoch 1's checkpoint reached the backend, and fails
    if that never happens: a relay that delivered only after the workers ended fails this."""
    backend = Recorder(tmp_path)
    with Relay(tmp_path / "relay", backend, stall_s=60) as relay:
        assert os.environ[DDP_RELAY.name] == str((tmp_path / "relay").resolve())
        subprocess.run(worker(0, wait_for=backend.checkpoint_stored), check=True, timeout=60)
    assert DDP_RELAY.name not in os.environ
    assert backend.calls == [
        "train/box_loss@1",
        "val/mAP50(B)@1",
        "checkpoint epoch1.pt",
        "train/box_loss@2",
        "val/mAP50(B)@2",
    ]
    assert relay.steps == {1, 2}
    assert (backend.run_dir / "artifacts" / "last-checkpoint.pt").read_bytes() == b"weights"
    lines = (backend.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 1, 2, 2]


def test_a_partly_written_line_waits_for_its_end(tmp_path: Path) -> None:
    backend = Recorder(tmp_path)
    with Relay(tmp_path / "relay", backend, stall_s=60):
        events = tmp_path / "relay" / "events.jsonl"
        line = json.dumps({"series": ["lr/pg0", 1, 0.01]}) + "\n"
        with events.open("a") as stream:
            stream.write(line[:10])
            stream.flush()
            time.sleep(1.2)
            assert backend.calls == []
            stream.write(line[10:])
    assert backend.calls == ["lr/pg0@1"]


def test_silent_workers_are_stopped_and_the_training_fails_with_the_reason(
    tmp_path: Path,
) -> None:
    backend = Recorder(tmp_path)
    relay = Relay(tmp_path / "relay", backend, stall_s=2)
    with pytest.raises(TrainingStalled, match=r"no training progress for 0.0333333 min"), relay:
        subprocess.run(worker(pause=0.1, then="hang"), check=True, timeout=120)
    assert relay.stalled
    # what the workers sent before they went silent still arrived
    assert len(backend.calls) == 5
    leftovers = [
        p
        for p in psutil.Process().children(recursive=True)
        if "time.sleep(300)" in " ".join(p.cmdline())
    ]
    assert leftovers == []


def test_a_stop_the_job_could_not_raise_stops_the_workers_and_the_training(
    tmp_path: Path,
) -> None:
    """Under DDP the job only waits for the launcher: a stop lost in a `__del__` is the
    relay's to act on, or the workers would train to their end."""
    relay = Relay(tmp_path / "relay", Recorder(tmp_path), stall_s=60)
    with signals_raise(), pytest.raises(JobInterrupted, match="SIGTERM"), relay:
        SignalsItselfWhenCollected()
        subprocess.run(worker(pause=0.1, then="hang"), check=True, timeout=120)
    leftovers = [
        p
        for p in psutil.Process().children(recursive=True)
        if "time.sleep(300)" in " ".join(p.cmdline())
    ]
    assert leftovers == []


def test_a_worker_that_fails_fails_the_training_with_its_exit_status(tmp_path: Path) -> None:
    backend = Recorder(tmp_path)
    failed = pytest.raises(RuntimeError, match=r"DDP training failed: .* exited with status 3")
    with failed, Relay(tmp_path / "relay", backend, stall_s=60):
        subprocess.run([sys.executable, "-c", "raise SystemExit(3)"], check=True)


def test_the_spool_writer_heartbeat_moves_the_modification_time(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").touch()
    os.utime(tmp_path / "events.jsonl", (0, 0))
    SpoolWriter(tmp_path).alive()
    assert time.time() - (tmp_path / "events.jsonl").stat().st_mtime < 60
