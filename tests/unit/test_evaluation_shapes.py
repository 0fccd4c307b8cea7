"""Evaluations in shapes the server accepts: degenerate boxes and polygons are counted and left
out, instead of failing a whole batch of 100; every asset keyed by its id."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pictrain.platform.base import Detection, Evaluation, Polygon
from pictrain.platform.env import PicselliaContext
from pictrain.platform.evaluations import Unsendable, sendable
from pictrain.platform.picsellia import PicselliaBackend
from pictrain.platform.retry import RetryPolicy
from tests.emulator import Emulator
from tests.emulator.dataset_dir import read_dataset_dir


@pytest.mark.parametrize(
    ("shape", "kept"),
    [
        (Detection(1, 1, 1, 1, "cat", 0.5), True),
        (Detection(1, 1, 0, 5, "cat", 0.5), False),
        (Detection(1, 1, 5, 0, "cat", 0.5), False),
        (Polygon([[0, 0], [4, 0], [0, 3]], "cat", 0.5), True),
        (Polygon([[0, 0], [4, 0], [4, 0], [0, 0]], "cat", 0.5), False),  # 2 distinct points
        (Polygon([[0, 0], [2, 2], [4, 4]], "cat", 0.5), False),  # on one line: no area
        (Polygon([[1, 1]], "cat", 0.5), False),
    ],
)
def test_sendable_shapes(shape: Detection | Polygon, kept: bool) -> None:
    dropped = Unsendable()
    assert sendable([shape], dropped) == ([shape] if kept else [])
    assert bool(dropped) is not kept


@pytest.mark.parametrize(
    ("task", "dataset_type", "degenerate", "fine"),
    [
        (
            "detect",
            "OBJECT_DETECTION",
            Detection(3, 4, 0, 6, "cat", 0.9),
            Detection(3, 4, 5, 6, "dog", 0.8),
        ),
        (
            "segment",
            "SEGMENTATION",
            Polygon([[3, 4], [9, 4], [9, 4]], "cat", 0.9),
            Polygon([[3, 4], [9, 4], [9, 9]], "dog", 0.8),
        ),
    ],
)
def test_degenerate_predictions_are_counted_not_sent(
    emulator: Emulator,
    sample_dataset: Path,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    task: str,
    dataset_type: str,
    degenerate: Detection | Polygon,
    fine: Detection | Polygon,
) -> None:
    splits, _ = read_dataset_dir(sample_dataset)
    ids = emulator.seed_experiment(splits, dataset_type=dataset_type)
    context = PicselliaContext.model_validate(emulator.job_env(ids))
    backend = PicselliaBackend(context, task, RetryPolicy(base_delay=0.01))
    field = "detections" if task == "detect" else "polygons"
    try:
        test = backend.datasets(tmp_path)["test"]
        names = sorted(p.name for p in test.images_dir.iterdir())
        evaluations = [Evaluation(names[0], **{field: [degenerate, fine]})]
        evaluations += [Evaluation(name) for name in names[1:]]
        with caplog.at_level(logging.WARNING, logger="pictrain"):
            backend.add_evaluations(evaluations)
            backend.flush()
    finally:
        backend.close()
    stored = emulator.state.experiments[ids.experiment_id].evaluations
    assert {str(asset_id) + ".png" for asset_id in stored} == set(names)  # background included
    kind = "rectangles" if task == "detect" else "polygons"
    assert sum(len(e.shapes.get(kind, [])) for e in stored.values()) == 1
    assert "not sent: 1 " in caplog.text
