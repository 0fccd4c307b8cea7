"""Resume decisions, results.csv replay (the DDP fallback) and the local backend's side of both."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pictrain.platform.base import CHECKPOINT_ARTIFACT
from pictrain.platform.local import LocalBackend
from pictrain.train.checkpoint import (
    RESUME_ADJUSTABLE,
    Checkpoint,
    resume_arguments,
    resume_problem,
)
from pictrain.train.metrics import read_results, replay_missing
from pictrain.train.origin import TrainingOrigin

NAMES = ["circle", "square", "triangle"]
OVERRIDES = {
    "epochs": 10,
    "optimizer": "auto",
    "lr0": 0.01,
    "warmup_bias_lr": 0.1,
    "batch": 16,
    "seed": 0,
}
SHA = "a" * 64
ORIGIN = TrainingOrigin(model="yolov8n", weights_sha256=SHA)
# ultralytics 8.4 writes no padding; older versions right-aligned the header and values.
RESULTS_CSV = """epoch,time,train/box_loss,metrics/mAP50(B),lr/pg0
1,3.1,1.5,0.1,0.01
2,6.2,1.4,0.2,0.009
3,9.3,1.3,0.3,0.008
3,9.9,1.25,0.35,0.008
"""


def checkpoint(
    epochs_done: int = 4, origin: TrainingOrigin | None = ORIGIN, **args: object
) -> Checkpoint:
    base = {
        "task": "detect",
        "epochs": 10,
        "optimizer": "AdamW",
        "lr0": 0.001429,
        "warmup_bias_lr": 0.0,
        "seed": 0,
    }
    return Checkpoint(Path("last.pt"), epochs_done, {**base, **args}, NAMES, origin)


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    (tmp_path / "data").mkdir()
    return LocalBackend(tmp_path / "data", tmp_path / "run")


def points(backend: LocalBackend) -> list[tuple[str, int, float]]:
    lines = (backend.run_dir / "metrics.jsonl").read_text().splitlines()
    return [(r["name"], r["step"], r["value"]) for r in map(json.loads, lines)]


def test_an_unfinished_checkpoint_of_the_same_training_resumes() -> None:
    # optimizer=auto: ultralytics stored its own pick (AdamW, lr0, no bias warmup) in it.
    assert resume_problem(checkpoint(), "detect", NAMES, OVERRIDES, ORIGIN) is None
    assert resume_problem(checkpoint(batch=8), "detect", NAMES, OVERRIDES, ORIGIN) is None


@pytest.mark.parametrize(
    ("ckpt", "task", "names", "overrides", "reason"),
    [
        (checkpoint(epochs_done=0), "detect", NAMES, OVERRIDES, "finished"),
        (checkpoint(epochs_done=10), "detect", NAMES, OVERRIDES, "finished"),
        (checkpoint(), "segment", NAMES, OVERRIDES, "it trains detect, not segment"),
        (checkpoint(), "detect", ["a", "b"], OVERRIDES, "classes"),
        (checkpoint(), "detect", NAMES, {**OVERRIDES, "epochs": 20}, "epochs 10 -> 20"),
        (
            checkpoint(optimizer="SGD", lr0=0.01),
            "detect",
            NAMES,
            {**OVERRIDES, "optimizer": "SGD", "lr0": 0.02},
            "lr0 0.01 -> 0.02",
        ),
        (
            checkpoint(origin=TrainingOrigin(model="yolov8s", weights_sha256=SHA)),
            "detect",
            NAMES,
            OVERRIDES,
            "it trains model yolov8s, not yolov8n",
        ),
        (
            checkpoint(origin=TrainingOrigin(model="yolov8n", weights_sha256="b" * 64)),
            "detect",
            NAMES,
            OVERRIDES,
            f"started from weights sha256 bbbbbbbbbbbb..., this run from weights sha256 {SHA[:12]}",
        ),
        (
            checkpoint(origin=TrainingOrigin(model="yolov8n", weights_sha256=None)),
            "detect",
            NAMES,
            OVERRIDES,
            "it started from scratch, this run from weights",
        ),
        (checkpoint(origin=None), "detect", NAMES, OVERRIDES, "does not record which model"),
    ],
)
def test_other_trainings_are_not_resumed(
    ckpt: Checkpoint, task: str, names: list[str], overrides: dict, reason: str
) -> None:
    problem = resume_problem(ckpt, task, names, overrides, ORIGIN)
    assert problem is not None and reason in problem


def test_what_a_resume_may_change_is_what_the_resumed_training_gets() -> None:
    """One list: a checkpoint is accepted with these changed, and the resumed trainer is given
    the new values (a new image_size used to be accepted but trained at the old one)."""
    changed = {"imgsz": 96, "device": "0,1,2,3", "batch": 64, "workers": 2, "patience": 5}
    overrides = {**OVERRIDES, **changed}
    ckpt = checkpoint(imgsz=64, device="0", batch=16, workers=8, patience=50)
    assert resume_problem(ckpt, "detect", NAMES, overrides, ORIGIN) is None
    assert resume_arguments(overrides) == changed
    assert set(changed) <= RESUME_ADJUSTABLE


# The two parameters ultralytics knows under another name (Parameters.ultralytics_overrides).
ULTRALYTICS_NAME = {"image_size": "imgsz", "batch_size": "batch"}


@pytest.mark.parametrize(
    ("doc", "sentence"),
    [
        ("docs/resume.md", "What a resume may change, and then trains with:"),
        ("docs/gpus.md", "**Resume across GPU counts.**"),
    ],
)
def test_the_docs_list_what_a_resume_may_change(doc: str, sentence: str) -> None:
    text = (Path(__file__).resolve().parents[2] / doc).read_text()
    after = text[text.index(sentence) :].split("\n\n")[0]
    named = {ULTRALYTICS_NAME.get(n, n) for n in re.findall(r"`([a-z_]+)`", after)}
    assert named - {"RESUME_ADJUSTABLE"} == RESUME_ADJUSTABLE, doc


def test_results_csv_last_row_per_epoch_under_curve_names(tmp_path: Path) -> None:
    csv = tmp_path / "results.csv"
    csv.write_text(RESULTS_CSV.replace(",", ",  "))  # padded, as older ultralytics wrote it
    rows = read_results(csv)
    assert list(rows) == [1, 2, 3]
    assert rows[3] == {"train/box_loss": 1.25, "val/mAP50(B)": 0.35, "lr/pg0": 0.008}
    assert read_results(tmp_path / "absent.csv") == {}


def test_replay_sends_every_epoch_when_no_callback_ran(
    tmp_path: Path, backend: LocalBackend
) -> None:
    """DDP: the callbacks ran in no process, results.csv is the whole curve."""
    csv = tmp_path / "results.csv"
    csv.write_text(RESULTS_CSV)
    assert replay_missing(csv, first_step=1, sent=set(), backend=backend) == 3
    assert [p for p in points(backend) if p[0] == "val/mAP50(B)"] == [
        ("val/mAP50(B)", 1, 0.1),
        ("val/mAP50(B)", 2, 0.2),
        ("val/mAP50(B)", 3, 0.35),
    ]


def test_replay_sends_only_what_is_missing_from_this_training(
    tmp_path: Path, backend: LocalBackend
) -> None:
    csv = tmp_path / "results.csv"
    csv.write_text(RESULTS_CSV)
    assert replay_missing(csv, first_step=1, sent={1, 2, 3}, backend=backend) == 0
    # Resumed at epoch 2, epoch 2 sent by the callback: epoch 1 belongs to the earlier attempt.
    assert replay_missing(csv, first_step=2, sent={2}, backend=backend) == 1
    assert {step for _, step, _ in points(backend)} == {3}


def test_a_curve_restarting_at_step_s_keeps_its_first_s_minus_1_points(
    backend: LocalBackend,
) -> None:
    for step in (1, 2, 3):  # the stopped attempt logged further than its checkpoint (epoch 1)
        backend.log_series("train/box_loss", step, float(step))
        backend.log_series("lr/pg0", step, 0.1)
    backend.log_value("test/mAP50", 0.5)

    restarted = LocalBackend(backend.dataset_dir, backend.run_dir)
    restarted.log_series("train/box_loss", 2, 20.0)
    restarted.log_series("train/box_loss", 3, 30.0)

    assert points(restarted) == [
        ("train/box_loss", 1, 1.0),
        ("lr/pg0", 1, 0.1),
        ("lr/pg0", 2, 0.1),
        ("lr/pg0", 3, 0.1),  # another curve: trimmed when its own first point comes
        ("test/mAP50", None, 0.5),
        ("train/box_loss", 2, 20.0),
        ("train/box_loss", 3, 30.0),
    ]


def test_the_local_checkpoint_is_taken_kept_and_discarded(
    tmp_path: Path, backend: LocalBackend
) -> None:
    assert backend.stored_artifact(CHECKPOINT_ARTIFACT, tmp_path) is None
    snapshot = tmp_path / "epoch3.pt"
    snapshot.write_bytes(b"weights")
    backend.store_checkpoint(snapshot)
    assert not snapshot.exists()  # the backend took the file
    stored = backend.stored_artifact(CHECKPOINT_ARTIFACT, tmp_path)
    assert stored is not None and stored.read_bytes() == b"weights"
    backend.discard_checkpoint()
    assert backend.stored_artifact(CHECKPOINT_ARTIFACT, tmp_path) is None


def test_a_resumed_run_without_a_better_epoch_keeps_its_last_weights(tmp_path: Path) -> None:
    from pictrain.train.runner import _best_weights

    with pytest.raises(RuntimeError, match="without weights"):
        _best_weights(tmp_path)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "last.pt").write_bytes(b"last")
    assert _best_weights(tmp_path).name == "last.pt"
    (tmp_path / "weights" / "best.pt").write_bytes(b"best")
    assert _best_weights(tmp_path).name == "best.pt"
