"""The training devices, as a platform job sees them: chosen before any download."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.jobs import PARAMETERS, assert_failed, job_env, run_job, seed
from tests.emulator import Emulator

pytestmark = pytest.mark.slow

OBJECT_DOWNLOAD = "/_storage/object/"  # the emulator's presigned downloads (assets, files)


def test_a_gpu_that_does_not_exist_fails_before_any_download(
    emulator: Emulator,
    splits: dict,
    yolo_config_dir: Path,
    tmp_path: Path,
) -> None:
    ids = seed(emulator, splits, parameters={**PARAMETERS, "device": "9"})
    finished = run_job(tmp_path, job_env(emulator, ids, yolo_config_dir), ids.experiment_id)
    assert_failed(emulator, ids, finished, r"device '9': this machine has no GPU", code=2)
    downloads = [r for r in emulator.state.requests if r.path.startswith(OBJECT_DOWNLOAD)]
    assert [r for r in downloads if r.method == "GET"] == []
