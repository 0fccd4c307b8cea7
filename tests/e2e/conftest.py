"""Fixtures of the end-to-end tests (one dataset, one ultralytics settings folder and one
untrained weights file per module)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pictrain.envvars import YOLO_CONFIG_DIR
from pictrain.synthetic import make_detection_dataset
from tests.e2e.jobs import synthetic_splits


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """16 images of 64 px: 10 train, 3 val, 3 test (alias -> images dir, COCO file)."""
    return synthetic_splits(tmp_path_factory.mktemp("synthetic"), make_detection_dataset)


@pytest.fixture(scope="module")
def yolo_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ultralytics settings for these runs only, not the user's."""
    return tmp_path_factory.mktemp("ultralytics")


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory, yolo_config_dir: Path) -> Path:
    """Untrained YOLOv8n weights, saved by ultralytics itself (no download)."""
    path = tmp_path_factory.mktemp("weights") / "tiny-yolov8n.pt"
    script = "import sys; from ultralytics import YOLO; YOLO('yolov8n.yaml').save(sys.argv[1])"
    env = {**os.environ, "YOLO_OFFLINE": "1", YOLO_CONFIG_DIR.name: str(yolo_config_dir)}
    subprocess.run([sys.executable, "-c", script, str(path)], env=env, check=True, timeout=120)
    return path
