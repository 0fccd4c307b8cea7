"""Fixtures of the end-to-end tests (one dataset and one ultralytics settings folder per module)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
