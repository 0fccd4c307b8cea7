"""The job with its ultralytics parts stubbed: what the fast job tests run instead of training,
inference on the weights and the ONNX export (`Stubs`), on a dataset whose every image holds
one square at BOX. The fixtures are in conftest.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import pictrain.job
from pictrain.evaluate.run import Predictor, export_predictor
from pictrain.params import Parameters
from pictrain.train.runner import TrainResult
from tests.unit.onnx_stub import constant_model

EPOCHS = 3
NAMES = ["circle", "square"]
SIZE = 64
BOX = [10.0, 20.0, 24.0, 24.0]  # x, y, w, h of the one square of every image
PARAMETERS = {"epochs": EPOCHS, "image_size": SIZE, "batch_size": 4, "workers": 0}


class StubTrainer:
    """`pictrain.job.train`: one curve point per epoch, then best.pt and last.pt (a torch file
    that is no ultralytics checkpoint), then `then()` (a failure mid-training, a stop)."""

    def __init__(self, then: Callable[[], None] | None = None) -> None:
        self.then = then
        self.calls = 0

    def __call__(
        self,
        task: str,
        model_name: str,
        weights: Path | None,
        data: Path,
        params: Parameters,
        devices: Any,
        save_dir: Path,
        backend: Any,
        resume: Any = None,
    ) -> TrainResult:
        self.calls += 1
        assert data.is_file() and params.epochs == EPOCHS
        for epoch in range(1, params.epochs + 1):
            backend.log_series("train/box_loss", epoch, 1.0 / epoch)
        folder = save_dir / "weights"
        folder.mkdir(parents=True)
        torch.save({"epoch": params.epochs - 1}, folder / "best.pt")
        torch.save({"epoch": params.epochs - 1}, folder / "last.pt")
        if self.then is not None:
            self.then()
        return TrainResult(save_dir, folder / "best.pt")


def one_box_model(path: Path, x: float) -> Path:
    """A detection head with one confident square at `x` (BOX's elsewhere), whatever the
    image."""
    raw = np.zeros((1, 4 + len(NAMES), 8), np.float32)
    _, y, w, h = BOX
    raw[0, :4, 0] = [x + w / 2, y + h / 2, w, h]
    raw[0, 4 + NAMES.index("square"), 0] = 0.9
    return constant_model(path, [raw], "detect", NAMES, SIZE)


class Stubs:
    """What the job gets instead of ultralytics: the trained weights find every square (a box
    at BOX); the export predicts its box at `export_x` (another x than BOX's: a bad export),
    or raises `export_error` (a full disk)."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder = tmp_path / "stubs"
        self.folder.mkdir()
        self.monkeypatch = monkeypatch
        self.export_x = BOX[0]
        self.export_error: Exception | None = None
        monkeypatch.setattr(pictrain.job, "weights_predictor", self._weights_predictor)
        monkeypatch.setattr(pictrain.job.artifacts, "export_onnx", self._export_onnx)

    def trainer(self, then: Callable[[], None] | None = None) -> StubTrainer:
        trainer = StubTrainer(then)
        self.monkeypatch.setattr(pictrain.job, "train", trainer)
        return trainer

    def _weights_predictor(self, weights: Path, image_size: int, device: str) -> Predictor:
        assert weights.is_file()
        return export_predictor(one_box_model(self.folder / "weights.onnx", BOX[0]))

    def _export_onnx(
        self,
        weights: Path,
        image_size: int,
        dest: Path,
        task: str,
        labelmap: dict[str, str],
        skeleton: dict[str, Any] | None = None,
        operating_point: dict[str, Any] | None = None,
    ) -> Path:
        assert labelmap == {str(i): name for i, name in enumerate(NAMES)}
        if self.export_error is not None:
            raise self.export_error
        return one_box_model(dest, self.export_x)


def write_square_dataset(folder: Path) -> Path:
    """Black images with one square each at BOX: train 4, val 1, test 2, and PARAMETERS."""
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(NAMES)]
    for split, count in {"train": 4, "val": 1, "test": 2}.items():
        (folder / split / "images").mkdir(parents=True)
        images, annotations = [], []
        for n in range(1, count + 1):
            Image.new("RGB", (SIZE, SIZE)).save(folder / split / "images" / f"{n}.jpg")
            images.append({"id": n, "file_name": f"{n}.jpg", "width": SIZE, "height": SIZE})
            square = {"id": n, "image_id": n, "category_id": 2, "bbox": BOX, "iscrowd": 0}
            annotations.append({**square, "area": BOX[2] * BOX[3]})
        coco = {"images": images, "annotations": annotations, "categories": categories}
        (folder / split / "annotations.json").write_text(json.dumps(coco))
    (folder / "parameters.json").write_text(json.dumps(PARAMETERS))
    return folder
