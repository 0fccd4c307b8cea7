"""What fails a run on the platform: data that never arrived (curves, artifacts, evaluations)
does, after retries; a status call that fails does not, so a lost status never turns a
trained, stored run into FAILED."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pictrain.errors import PlatformError
from pictrain.platform.env import PicselliaContext
from pictrain.platform.picsellia import PicselliaBackend
from pictrain.platform.retry import RetryPolicy
from pictrain.runstatus import JobStatus
from tests.emulator import Emulator, SeededIds

POLICY = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.01)  # patient() adds attempts


def test_an_artifact_that_never_arrived_fails_the_run(
    emulator: Emulator, seeded: SeededIds, tmp_path: Path
) -> None:
    backend = PicselliaBackend(
        PicselliaContext.model_validate(emulator.job_env(seeded)), "detect", POLICY
    )
    emulator.faults.add("POST", re.compile(r"/artifacts$"), status=503, times=None)
    weights = tmp_path / "model-latest.onnx"
    weights.write_bytes(b"an export")
    try:
        backend.store_artifact("model-latest", weights)
        backend.log_value("test/mAP50-95(B)", 0.5)
        with pytest.raises(
            PlatformError, match="failed after retries: store artifact model-latest"
        ):
            backend.flush()
    finally:
        backend.close()
    logs = emulator.state.experiments[seeded.experiment_id].logs
    assert float(logs["test/mAP50-95(B)"].data) == 0.5  # what could be sent was sent


def test_a_status_call_that_fails_does_not(emulator: Emulator, seeded: SeededIds) -> None:
    backend = PicselliaBackend(
        PicselliaContext.model_validate(emulator.job_env(seeded)), "detect", POLICY
    )
    emulator.faults.add("PATCH", re.compile(r"^/api/experiment/[^/]+$"), status=503, times=None)
    emulator.faults.add("PATCH", re.compile(r"/job/status$"), status=503, times=None)
    try:
        backend.set_status(JobStatus.DONE)
        backend.flush()  # nothing raised: the run stays done
    finally:
        backend.close()
    assert emulator.state.experiments[seeded.experiment_id].status == "WAITING"
