"""The weights' predictions on the test split: bounded batches, one letterbox for every image."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pictrain.evaluate import predict as predict_module
from pictrain.evaluate.ground_truth import EvalImage
from pictrain.evaluate.predict import predict

# Large enough that a 96x160 image's smallest rectangle (96x128) is not the square (128x128).
IMAGE_SIZE = 128


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("weights") / "untrained.pt"
    YOLO("yolov8n.yaml").save(path)
    return path


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The shape of every input tensor ultralytics' predictor builds."""
    from ultralytics.engine.predictor import BasePredictor

    shapes: list[tuple[int, ...]] = []
    preprocess = BasePredictor.preprocess

    def recorded(self: BasePredictor, im: object) -> object:
        tensor = preprocess(self, im)
        shapes.append(tuple(tensor.shape))
        return tensor

    monkeypatch.setattr(BasePredictor, "preprocess", recorded)
    return shapes


def _images(folder: Path, shapes: list[tuple[int, int]]) -> list[EvalImage]:
    rng = np.random.default_rng(0)
    images = []
    for index, (height, width) in enumerate(shapes):
        path = folder / f"{index}.png"
        cv2.imwrite(str(path), rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
        images.append(EvalImage(index, path, width, height))
    return images


def test_every_image_is_letterboxed_to_the_square_whatever_shares_its_batch(
    weights: Path, tmp_path: Path, batches: list[tuple[int, ...]]
) -> None:
    """ultralytics letterboxes a batch of one shape to its smallest rectangle and a mixed batch
    to the square: the same image was scored differently depending on its neighbours, and
    unlike the static export a deployment runs."""
    wide, tall = _images(tmp_path, [(96, 160), (160, 96)])
    list(predict(weights, [wide], IMAGE_SIZE, "cpu"))
    list(predict(weights, [wide, tall], IMAGE_SIZE, "cpu"))
    assert [shape[2:] for shape in batches] == [(IMAGE_SIZE, IMAGE_SIZE)] * len(batches)


def test_the_split_is_predicted_a_bounded_batch_at_a_time(
    weights: Path,
    tmp_path: Path,
    batches: list[tuple[int, ...]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A list of paths given whole to ultralytics is read into memory and run as one batch."""
    monkeypatch.setattr(predict_module, "INFERENCE_BATCH", 2)
    images = _images(tmp_path, [(64, 64)] * 5)
    assert len(list(predict(weights, images, IMAGE_SIZE, "cpu"))) == 5
    assert [shape[0] for shape in batches] == [2, 2, 1]
