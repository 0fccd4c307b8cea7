"""A local run starts from the image's pretrained weights (`PICTRAIN_WEIGHTS_DIR/<model>.pt`)
when the dataset folder brings none: weights the test makes by training a tiny model on one
synthetic set, then starts from on another."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pictrain.checksums import sha256
from pictrain.envvars import WEIGHTS_DIR
from pictrain.synthetic import make_detection_dataset

pytestmark = pytest.mark.slow

PARAMETERS = {"epochs": 1, "batch_size": 4, "image_size": 64, "workers": 0}


def _run(dataset: Path, runs: Path, name: str, env: dict[str, str]) -> Path:
    """`pictrain run --local` to its end; its run folder."""
    done = subprocess.run(
        [sys.executable, "-m", "pictrain", "run", "--local", str(dataset), "--name", name],
        cwd=runs,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    (runs / f"{name}.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr[-3000:]
    return runs / "runs" / name


def _dataset(folder: Path, seed: int, parameters: dict) -> Path:
    make_detection_dataset(folder, n_images=16, image_size=64, seed=seed)
    (folder / "parameters.json").write_text(json.dumps(parameters))
    return folder


@pytest.fixture(scope="module")
def image_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image weights folder holding `yolov8n.pt`: a model trained on one synthetic set."""
    root = tmp_path_factory.mktemp("source")
    env = {k: v for k, v in os.environ.items() if k != WEIGHTS_DIR.name}
    source = _dataset(root / "data", seed=7, parameters={**PARAMETERS, "pretrained": False})
    run_dir = _run(source, root, "source", env)
    folder = root / "weights"
    folder.mkdir()
    shutil.copyfile(run_dir / "artifacts" / "best-model.pt", folder / "yolov8n.pt")
    return folder


def test_the_run_starts_from_the_image_weights_for_its_model(
    image_weights: Path, tmp_path: Path
) -> None:
    target = _dataset(tmp_path / "data", seed=0, parameters=PARAMETERS)
    env = {**os.environ, WEIGHTS_DIR.name: str(image_weights)}
    run_dir = _run(target, tmp_path, "target", env)
    manifest = json.loads((run_dir / "artifacts" / "manifest.json").read_text())
    expected = sha256(image_weights / "yolov8n.pt")
    assert manifest["inputs"]["starting_weights"] == {
        "source": "image",
        "file": "yolov8n.pt",
        "sha256": expected,
    }
    log = (tmp_path / "target.log").read_text()
    assert f"starting weights: image yolov8n.pt, sha256 {expected}" in log
    assert "training yolov8n from yolov8n.pt" in log  # what the trainer was given
    assert "items from pretrained weights" in log  # ultralytics transferred them


def test_the_source_run_recorded_that_it_trained_from_scratch(image_weights: Path) -> None:
    run_dir = image_weights.parent / "runs" / "source"
    manifest = json.loads((run_dir / "artifacts" / "manifest.json").read_text())
    none = {"source": "none", "file": None, "sha256": None}
    assert manifest["inputs"]["starting_weights"] == none
    log = (image_weights.parent / "source.log").read_text()
    assert "starting weights: none, training yolov8n from scratch: the parameter pretrained" in log
