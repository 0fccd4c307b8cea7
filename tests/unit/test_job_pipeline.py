"""The whole `Job` on a local dataset in seconds: the training, the weights' inference and the
ONNX export are stubbed at the seams `pictrain.job` calls (`tests/unit/job_stubs.py`); the rest
is real (parameters, conversion, COCO evaluation, the deploy-parity gate on onnxruntime, the
failure path, status.json). The real training runs in tests/e2e (slow)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from pictrain.config import load_model_config
from pictrain.errors import PlatformError
from pictrain.exportformats import MODEL_ARTIFACT
from pictrain.job import Job
from pictrain.platform.base import BEST_MODEL_ARTIFACT, CHECKPOINT_ARTIFACT
from pictrain.platform.local import LocalBackend
from tests.unit.job_stubs import PARAMETERS, Stubs


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


def test_done(stubs: Stubs, square_dataset: Path, tmp_path: Path) -> None:
    trainer = stubs.trainer()
    run_dir = tmp_path / "run"
    assert run_job(square_dataset, run_dir) == 0
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


def test_a_user_error_fails_before_training(
    stubs: Stubs, square_dataset: Path, tmp_path: Path
) -> None:
    trainer = stubs.trainer()
    (square_dataset / "parameters.json").write_text(json.dumps({**PARAMETERS, "epochss": 2}))
    run_dir = tmp_path / "run"
    assert run_job(square_dataset, run_dir) == 2
    state, reason, code = status(run_dir)
    assert (state, code) == ("failed", 2) and "did you mean 'epochs'" in str(reason)
    assert trainer.calls == 0 and stored(run_dir) == set()


def test_a_platform_error_fails_before_training(
    stubs: Stubs, square_dataset: Path, tmp_path: Path
) -> None:
    trainer = stubs.trainer()
    run_dir = tmp_path / "run"
    backend = FailingBackend(square_dataset, run_dir, "datasets")
    assert run_job(square_dataset, run_dir, backend) == 3
    assert status(run_dir) == ("failed", "datasets failed after retries: 503", 3)
    assert trainer.calls == 0 and stored(run_dir) == set()


def test_a_stop_during_training_stores_the_weights_and_the_checkpoint(
    stubs: Stubs, square_dataset: Path, tmp_path: Path
) -> None:
    stubs.trainer(then=lambda: os.kill(os.getpid(), signal.SIGTERM))
    run_dir = tmp_path / "run"
    assert run_job(square_dataset, run_dir) == 143
    assert status(run_dir) == ("failed", "stopped by SIGTERM", 143)
    assert {BEST_MODEL_ARTIFACT, CHECKPOINT_ARTIFACT} <= stored(run_dir)
    assert MODEL_ARTIFACT not in stored(run_dir)


def test_a_crash_during_training_stores_what_was_trained(
    stubs: Stubs, square_dataset: Path, tmp_path: Path
) -> None:
    def crash() -> None:
        raise RuntimeError("CUDA error: an illegal memory access")

    stubs.trainer(then=crash)
    run_dir = tmp_path / "run"
    assert run_job(square_dataset, run_dir) == 1
    reason = "internal error: RuntimeError: CUDA error: an illegal memory access"
    assert status(run_dir) == ("failed", reason, 1)
    assert {BEST_MODEL_ARTIFACT, CHECKPOINT_ARTIFACT} <= stored(run_dir)


def test_a_failure_after_training_keeps_the_stored_weights(
    stubs: Stubs, square_dataset: Path, tmp_path: Path
) -> None:
    """The export's upload fails for good: the weights stored after training stay, and no
    checkpoint is left (the training finished: there is nothing to resume)."""
    stubs.trainer()
    run_dir = tmp_path / "run"
    backend = FailingBackend(square_dataset, run_dir, MODEL_ARTIFACT)
    assert run_job(square_dataset, run_dir, backend) == 3
    assert status(run_dir) == ("failed", f"{MODEL_ARTIFACT} failed after retries: 503", 3)
    assert BEST_MODEL_ARTIFACT in stored(run_dir)
    assert {MODEL_ARTIFACT, CHECKPOINT_ARTIFACT}.isdisjoint(stored(run_dir))
    assert "test/mAP50-95(B)" in metrics(run_dir)  # evaluated before the export


def test_an_export_that_does_not_score_as_the_weights_fails_after_storing_both(
    stubs: Stubs, square_dataset: Path, tmp_path: Path
) -> None:
    stubs.trainer()
    stubs.export_x = 30.0  # its box is elsewhere: the export is not what was trained
    run_dir = tmp_path / "run"
    assert run_job(square_dataset, run_dir) == 1
    state, reason, code = status(run_dir)
    assert (state, code) == ("failed", 1) and "does not score as the weights" in str(reason)
    assert {BEST_MODEL_ARTIFACT, MODEL_ARTIFACT} <= stored(run_dir)
