"""The whole `Job` on a local dataset in seconds: the training, the weights' inference and the
ONNX export are stubbed at the seams `pictrain.job` calls (`train`, `weights_predictor`,
`artifacts.export_onnx`); the rest is real (parameters, conversion, COCO evaluation, the
deploy-parity gate on onnxruntime, the failure path, status.json). The real training runs in
tests/e2e (slow)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import pictrain.job
from pictrain.config import load_model_config
from pictrain.errors import PlatformError
from pictrain.evaluate.run import Predictor, onnx_predictor
from pictrain.job import Job
from pictrain.params import Parameters
from pictrain.platform.base import BEST_MODEL_ARTIFACT, CHECKPOINT_ARTIFACT, MODEL_ARTIFACT
from pictrain.platform.local import LocalBackend
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
    at BOX); the export predicts its box at `export_x` (another x than BOX's: a bad export)."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder = tmp_path / "stubs"
        self.folder.mkdir()
        self.monkeypatch = monkeypatch
        self.export_x = BOX[0]
        monkeypatch.setattr(pictrain.job, "weights_predictor", self._weights_predictor)
        monkeypatch.setattr(pictrain.job.artifacts, "export_onnx", self._export_onnx)

    def trainer(self, then: Callable[[], None] | None = None) -> StubTrainer:
        trainer = StubTrainer(then)
        self.monkeypatch.setattr(pictrain.job, "train", trainer)
        return trainer

    def _weights_predictor(self, weights: Path, image_size: int, device: str) -> Predictor:
        assert weights.is_file()
        return onnx_predictor(one_box_model(self.folder / "weights.onnx", BOX[0]))

    def _export_onnx(
        self, weights: Path, image_size: int, dest: Path, task: str, labelmap: dict[str, str]
    ) -> Path:
        assert labelmap == {str(i): name for i, name in enumerate(NAMES)}
        return one_box_model(dest, self.export_x)


@pytest.fixture
def stubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stubs:
    return Stubs(tmp_path, monkeypatch)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Black images with one square each at BOX: train 4, val 1, test 2."""
    folder = tmp_path / "dataset"
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


def run_job(dataset: Path, run_dir: Path, backend: LocalBackend | None = None) -> int:
    backend = backend or LocalBackend(dataset, run_dir)
    return Job(backend, run_dir, load_model_config(None, "detect")).run()


def status(run_dir: Path) -> tuple[str, str | None, int | None]:
    record = json.loads((run_dir / "status.json").read_text())
    return record["status"], record["reason"], record["exit_code"]


def stored(run_dir: Path) -> set[str]:
    return {p.stem for p in (run_dir / "artifacts").iterdir()}


def metrics(run_dir: Path) -> dict[str, list[Any]]:
    curves: dict[str, list[Any]] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        curves.setdefault(record["name"], []).append(record["step"] or record["value"])
    return curves


class FailingBackend(LocalBackend):
    """The local backend, whose `fail_on` call raises what a platform that stays unreachable
    raises."""

    def __init__(self, dataset: Path, run_dir: Path, fail_on: str) -> None:
        super().__init__(dataset, run_dir)
        self.fail_on = fail_on

    def datasets(self, dest: Path) -> Any:
        self._maybe_fail("datasets")
        return super().datasets(dest)

    def store_artifact(self, name: str, path: Path) -> None:
        self._maybe_fail(name)
        super().store_artifact(name, path)

    def _maybe_fail(self, what: str) -> None:
        if what == self.fail_on:
            raise PlatformError(f"{what} failed after retries: 503")


def test_done(stubs: Stubs, dataset: Path, tmp_path: Path) -> None:
    trainer = stubs.trainer()
    run_dir = tmp_path / "run"
    assert run_job(dataset, run_dir) == 0
    assert trainer.calls == 1
    assert status(run_dir) == ("done", None, 0)
    assert {BEST_MODEL_ARTIFACT, MODEL_ARTIFACT, "config", "manifest", "labelmap"} == stored(
        run_dir
    )
    best = run_dir / "artifacts" / f"{BEST_MODEL_ARTIFACT}.pt"
    assert best.read_bytes() == (run_dir / "train" / "weights" / "best.pt").read_bytes()
    curves = metrics(run_dir)
    assert curves["train/box_loss"] == [1, 2, 3]
    assert curves["test/mAP50-95(B)"] == [1.0]
    assert curves["test/onnx-mAP50-95-difference"] == [0.0]
    assert (run_dir / "tables" / "test_deploy-parity.json").is_file()
    evaluations = (run_dir / "evaluations.jsonl").read_text().splitlines()
    assert len(evaluations) == 2  # one per test image


def test_a_user_error_fails_before_training(stubs: Stubs, dataset: Path, tmp_path: Path) -> None:
    trainer = stubs.trainer()
    (dataset / "parameters.json").write_text(json.dumps({**PARAMETERS, "epochss": 2}))
    run_dir = tmp_path / "run"
    assert run_job(dataset, run_dir) == 2
    state, reason, code = status(run_dir)
    assert (state, code) == ("failed", 2) and "did you mean 'epochs'" in str(reason)
    assert trainer.calls == 0 and stored(run_dir) == set()


def test_a_platform_error_fails_before_training(
    stubs: Stubs, dataset: Path, tmp_path: Path
) -> None:
    trainer = stubs.trainer()
    run_dir = tmp_path / "run"
    assert run_job(dataset, run_dir, FailingBackend(dataset, run_dir, "datasets")) == 3
    assert status(run_dir) == ("failed", "datasets failed after retries: 503", 3)
    assert trainer.calls == 0 and stored(run_dir) == set()


def test_a_stop_during_training_stores_the_weights_and_the_checkpoint(
    stubs: Stubs, dataset: Path, tmp_path: Path
) -> None:
    stubs.trainer(then=lambda: os.kill(os.getpid(), signal.SIGTERM))
    run_dir = tmp_path / "run"
    assert run_job(dataset, run_dir) == 143
    assert status(run_dir) == ("failed", "stopped by SIGTERM", 143)
    assert {BEST_MODEL_ARTIFACT, CHECKPOINT_ARTIFACT} <= stored(run_dir)
    assert MODEL_ARTIFACT not in stored(run_dir)


def test_a_crash_during_training_stores_what_was_trained(
    stubs: Stubs, dataset: Path, tmp_path: Path
) -> None:
    def crash() -> None:
        raise RuntimeError("CUDA error: an illegal memory access")

    stubs.trainer(then=crash)
    run_dir = tmp_path / "run"
    assert run_job(dataset, run_dir) == 1
    reason = "internal error: RuntimeError: CUDA error: an illegal memory access"
    assert status(run_dir) == ("failed", reason, 1)
    assert {BEST_MODEL_ARTIFACT, CHECKPOINT_ARTIFACT} <= stored(run_dir)


def test_a_failure_after_training_keeps_the_stored_weights(
    stubs: Stubs, dataset: Path, tmp_path: Path
) -> None:
    """The export's upload fails for good: the weights stored after training stay, and no
    checkpoint is left (the training finished: there is nothing to resume)."""
    stubs.trainer()
    run_dir = tmp_path / "run"
    backend = FailingBackend(dataset, run_dir, MODEL_ARTIFACT)
    assert run_job(dataset, run_dir, backend) == 3
    assert status(run_dir) == ("failed", f"{MODEL_ARTIFACT} failed after retries: 503", 3)
    assert BEST_MODEL_ARTIFACT in stored(run_dir)
    assert {MODEL_ARTIFACT, CHECKPOINT_ARTIFACT}.isdisjoint(stored(run_dir))
    assert "test/mAP50-95(B)" in metrics(run_dir)  # evaluated before the export


def test_an_export_that_does_not_score_as_the_weights_fails_after_storing_both(
    stubs: Stubs, dataset: Path, tmp_path: Path
) -> None:
    stubs.trainer()
    stubs.export_x = 30.0  # its box is elsewhere: the export is not what was trained
    run_dir = tmp_path / "run"
    assert run_job(dataset, run_dir) == 1
    state, reason, code = status(run_dir)
    assert (state, code) == ("failed", 1) and "does not score as the weights" in str(reason)
    assert {BEST_MODEL_ARTIFACT, MODEL_ARTIFACT} <= stored(run_dir)
