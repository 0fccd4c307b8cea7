"""Every model image: a short local run on a synthetic dataset of its task ends done, offline."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.images.build_inputs import IMAGES_DIR, MODEL_IMAGES, checkout_sha
from tests.images.dockerutil import Docker, offline_run_flags


@pytest.mark.images
@pytest.mark.parametrize("name", MODEL_IMAGES)
def test_local_run_ends_done(
    name: str, docker: Docker, built: dict[str, str], make_dataset, runs_dir: Path
) -> None:
    task = tomllib.loads((IMAGES_DIR / name / "model.toml").read_text())["task"]
    data = make_dataset(
        {"epochs": 1, "batch_size": 4, "image_size": 64, "device": "cpu"}, task=task
    )
    proc = docker.run(
        built[name],
        "pictrain",
        "run",
        "--local",
        "/data",
        "--name",
        "smoke",
        flags=offline_run_flags(data, runs_dir),
        timeout=600,
        check=False,
    )
    status_file = runs_dir / "smoke" / "status.json"
    log = (proc.stdout + proc.stderr)[-5000:]
    assert status_file.exists(), log
    status = json.loads(status_file.read_text())
    assert status["status"] == "done", (status, log)
    assert proc.returncode == 0, log
    assert (runs_dir / "smoke" / "artifacts" / "model-latest.onnx").is_file()
    manifest = json.loads((runs_dir / "smoke" / "artifacts" / "manifest.json").read_text())
    assert manifest["git_sha"] == (checkout_sha() or None)
