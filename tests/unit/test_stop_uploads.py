"""Stopping (SIGTERM, then SIGKILL after the platform's timeout): a recent stored checkpoint is
kept rather than replaced by an upload that would not finish in time."""

from __future__ import annotations

import re
import time
from pathlib import Path

from pictrain.platform.env import PicselliaContext
from pictrain.platform.picsellia import PicselliaBackend
from pictrain.platform.uploads import UploadMeter
from tests.emulator import Emulator, SeededIds


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_estimate_counts_what_is_queued_ahead(tmp_path: Path) -> None:
    clock = Clock()
    meter = UploadMeter(clock)
    assert meter.seconds_for(10) is None  # nothing measured yet
    done = tmp_path / "done"
    done.write_bytes(b"x" * 100)

    def two_seconds() -> None:
        clock.now += 2.0

    meter.queued(100)
    meter.upload(done, two_seconds)  # 50 bytes/s
    meter.queued(100)  # one more queued, not sent yet
    assert meter.seconds_for(50) == 3.0
    meter.dropped(100)
    assert meter.seconds_for(50) == 1.0


def checkpoint(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_a_fresh_checkpoint_stays_when_the_next_would_not_fit(
    emulator: Emulator, seeded: SeededIds, tmp_path: Path
) -> None:
    state = emulator.state
    emulator.faults.add("POST", re.compile(r"^/_storage/upload$"), latency=0.3, times=None)
    context = PicselliaContext.model_validate(emulator.job_env(seeded))
    backend = PicselliaBackend(context, "detect")
    try:
        backend.store_checkpoint(checkpoint(tmp_path, "epoch1.pt", b"1" * 200_000))
        backend.flush()
        stored = state.artifact_bytes(seeded.experiment_id, "last-checkpoint")
        # Stopping with 0.1 s left: ~0.3 s of upload would not fit, the stored one stays.
        backend.store_checkpoint(
            checkpoint(tmp_path, "last.pt", b"2" * 200_000), time.monotonic() + 0.1
        )
        backend.flush()
        assert state.artifact_bytes(seeded.experiment_id, "last-checkpoint") == stored
        assert not (tmp_path / "last.pt").exists()  # taken all the same
        # With time enough, it goes.
        backend.store_checkpoint(
            checkpoint(tmp_path, "last.pt", b"3" * 200_000), time.monotonic() + 60
        )
        backend.flush()
        assert state.artifact_bytes(seeded.experiment_id, "last-checkpoint")[:1] == b"3"
    finally:
        backend.close()


def test_without_a_stored_checkpoint_the_upload_is_tried_anyway(
    emulator: Emulator, seeded: SeededIds, tmp_path: Path
) -> None:
    context = PicselliaContext.model_validate(emulator.job_env(seeded))
    backend = PicselliaBackend(context, "detect")
    try:
        backend.store_checkpoint(checkpoint(tmp_path, "last.pt", b"4" * 1000), time.monotonic())
        backend.flush()
    finally:
        backend.close()
    assert emulator.state.artifact_bytes(seeded.experiment_id, "last-checkpoint") == b"4" * 1000
