"""Every confusion matrix of a run has the true class on rows, ultralytics' val ones included."""

from pathlib import Path

import numpy as np
import pytest

from pictrain import confusion


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[np.ndarray, list[str], str, bool]]:
    calls = []

    def record(matrix, names, path, title, normalize=False):
        calls.append((matrix, names, path.name, normalize))
        return path

    monkeypatch.setattr(confusion, "plot_confusion", record)
    return calls


def _ultralytics_matrix(task: str, rows: list[list[int]]):
    from ultralytics.utils.metrics import ConfusionMatrix

    matrix = ConfusionMatrix(names={0: "cat", 1: "dog"}, task=task)
    matrix.matrix = np.array(rows, dtype=np.float64)  # ultralytics: rows predicted
    return matrix


def test_detection_val_matrix_is_redrawn_true_on_rows_with_background(drawn, tmp_path: Path):
    # predicted cat: 5 true cats, 1 true dog, 2 false detections (true background)
    ours = _ultralytics_matrix("detect", [[5, 1, 2], [0, 4, 0], [1, 0, 0]])
    confusion.redraw_validation(ours, tmp_path)
    assert [(name, normalize) for _, _, name, normalize in drawn] == [
        ("confusion_matrix.png", False),
        ("confusion_matrix_normalized.png", True),
    ]
    matrix, names, _, _ = drawn[0]
    assert names == ["cat", "dog", "background"]
    assert matrix.tolist() == [[5, 0, 1], [1, 4, 0], [2, 0, 0]]  # row "cat": the true cats


def test_classification_val_matrix_has_no_background(drawn, tmp_path: Path):
    confusion.redraw_validation(_ultralytics_matrix("classify", [[3, 1], [0, 2]]), tmp_path)
    matrix, names, _, _ = drawn[0]
    assert names == ["cat", "dog"]
    assert matrix.tolist() == [[3, 0], [1, 2]]


def test_a_drawing_is_written(tmp_path: Path):
    path = confusion.plot_confusion(np.eye(3), ["a", "b", "c"], tmp_path / "m.png", "t", True)
    assert path.stat().st_size > 0
