"""Champion against challenger: the verdict, the table publish and deploy read back, and what
is not compared (another task, other classes)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from pictrain.evaluate.champion import TABLE, WORSE, Comparison, compare, refusal

CHALLENGER = {"mAP50-95(B)": 0.40, "mAP50(B)": 0.70}


def _versus(champion: dict[str, float], tolerance: float = 0.005) -> Comparison:
    return Comparison(
        "detect", "checkpoint-weights-latest", "f" * 64, tolerance, CHALLENGER, champion
    )


@pytest.mark.parametrize(
    ("champion", "verdict"),
    [(0.50, WORSE), (0.404, "not worse"), (0.30, "not worse")],
)
def test_the_verdict_allows_the_tolerance(champion: float, verdict: str) -> None:
    outcome = _versus({"mAP50-95(B)": champion, "mAP50(B)": 0.7})
    assert outcome.verdict == verdict
    assert outcome.values["champion-mAP50-95(B)"] == champion


def test_publish_and_deploy_read_the_refusal_from_the_table() -> None:
    worse = _versus({"mAP50-95(B)": 0.5, "mAP50(B)": 0.8})
    table = worse.table
    assert table["rows"][0] == "mAP50-95(B)"
    why = refusal(table)
    assert why is not None
    assert "0.4000, below the champion's 0.5000" in why and "by 0.1000" in why
    assert refusal(_versus({"mAP50-95(B)": 0.3}).table) is None
    assert TABLE == "champion-vs-challenger"


def test_classes_that_differ_are_not_compared(tmp_path: Path) -> None:
    """A model of COCO's 80 classes against a run of two: nothing is scored or refused."""
    from ultralytics import YOLO

    weights = tmp_path / "coco.pt"
    YOLO("yolov8n.yaml").save(str(weights))
    dataset = SimpleNamespace(names=["circle", "square"])
    outcome = compare(
        "detect", weights, "best-model", dataset, CHALLENGER, 0.005, 64, "cpu", tmp_path / "out"
    )
    assert outcome.verdict.startswith("not compared: its classes [0, 1, 2, 3, 4, ... 80 classes]")
    assert outcome.champion == {} and outcome.difference is None
    assert refusal(outcome.table) is None
    assert outcome.record()["verdict"] == outcome.verdict


def test_a_file_that_is_no_checkpoint_is_not_compared(tmp_path: Path) -> None:
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"not a checkpoint")
    dataset = SimpleNamespace(names=["circle"])
    outcome = compare(
        "detect", weights, "weights", dataset, CHALLENGER, 0.005, 64, "cpu", tmp_path / "out"
    )
    assert outcome.verdict == "not compared: its file is not an ultralytics checkpoint"
