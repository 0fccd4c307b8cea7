"""Evaluate a model on the test split: write `evaluation/`, return what to send.

The same path scores the trained weights and their ONNX export (`Predictor`), so the two
are comparable number for number (`pictrain.evaluate.parity`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pictrain.config import IOU_SUFFIX, task_spec
from pictrain.data.prepare import PreparedDataset
from pictrain.evaluate.classification import (
    classification_report,
    predict_top5,
    read_class_split,
)
from pictrain.evaluate.coco_eval import evaluate_coco
from pictrain.evaluate.confusion import plot_confusion
from pictrain.evaluate.ground_truth import EvalImage, build_ground_truth
from pictrain.evaluate.instance import SCORING_CONFIDENCE, Instance
from pictrain.evaluate.predict import coco_results, predict, to_evaluation
from pictrain.platform.base import Classification, Evaluation

log = logging.getLogger(__name__)

# Evaluation files per COCO kind: coco_stats.json, coco_stats_segm.json...
FILE_TAIL = {"bbox": "", "segm": "_segm", "keypoints": "_keypoints", "obb": ""}
CONFUSION_MATRIX = "test/confusion-matrix"


@dataclass
class TestEvaluation:
    """Everything the test split gives the platform: values, tables, plots and evaluations."""

    values: dict[str, float] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    heatmaps: dict[str, dict[str, Any]] = field(default_factory=dict)
    plots: dict[str, Path] = field(default_factory=dict)  # IMAGE log name -> file
    evaluations: list[Evaluation] = field(default_factory=list)


@dataclass(frozen=True)
class Predictor:
    """A model as the evaluation sees it: instances per image (detect, segment), or each
    image's five best classes with their probabilities (classify)."""

    instances: Callable[[list[EvalImage]], Iterator[tuple[EvalImage, list[Instance]]]]
    top5: Callable[[list[Path]], Iterator[list[tuple[int, float]]]]


def weights_predictor(weights: Path, image_size: int, device: str) -> Predictor:
    """ultralytics' own inference on the trained `.pt` weights."""
    return Predictor(
        instances=lambda images: predict(weights, images, image_size, device),
        top5=lambda paths: predict_top5(weights, paths, image_size, device),
    )


def export_predictor(path: Path) -> Predictor:
    """An export (any format: `pictrain.evaluate.runtimes`), run as a deployment runs it."""
    from pictrain.evaluate.onnx_model import OnnxModel

    model = OnnxModel.load(path)
    return Predictor(
        instances=lambda images: (
            (image, model.predict(image.path, conf=SCORING_CONFIDENCE)) for image in images
        ),
        top5=lambda paths: (
            [(i.cls, i.score) for i in model.predict(path, conf=0.0)] for path in paths
        ),
    )


def evaluate_test_split(
    task: str,
    predictor: Predictor,
    dataset: PreparedDataset,
    min_score: float,
    out_dir: Path,
) -> TestEvaluation:
    out_dir.mkdir(parents=True, exist_ok=True)
    if not task_spec(task).scored:
        return _classification(predictor, dataset, out_dir)
    return _instances(task, predictor, dataset, min_score, out_dir)


def _instances(
    task: str,
    predictor: Predictor,
    dataset: PreparedDataset,
    min_score: float,
    out_dir: Path,
) -> TestEvaluation:
    spec = task_spec(task)
    iou_types = spec.scored
    truth = build_ground_truth(
        dataset.indexes["test"],
        dataset.summaries["test"].written,
        dataset.images_dir("test"),
        dataset.names,
        iou_types,
        dataset.keypoints,
    )
    sigmas = dataset.keypoints.sigmas if dataset.keypoints else None  # those it trained with
    if truth.left_out:
        reasons = ", ".join(f"{n} ({why})" for why, n in truth.left_out.items())
        log.warning("test annotations not scored: %s", reasons)
    results: dict[str, list[dict[str, Any]]] = {t: [] for t in iou_types}
    outcome = TestEvaluation()
    for image, instances in predictor.instances(truth.images):
        for iou_type in iou_types:
            results[iou_type].extend(coco_results(image, instances, truth.category_ids, iou_type))
        name = dataset.source_name(image.path.name)
        outcome.evaluations.append(
            to_evaluation(name, instances, dataset.names, min_score, spec.evaluation_shape)
        )
    for iou_type in iou_types:
        ground_truth = truth.datasets[iou_type]
        report = evaluate_coco(ground_truth, results[iou_type], iou_type, sigmas=sigmas)
        suffix, tail = IOU_SUFFIX[iou_type], FILE_TAIL[iou_type]
        log.info("test split, %d images, %s:\n%s", len(truth.images), iou_type, report.summary)
        # COCO's -1 means "nothing to measure" (e.g. no large objects): not a score to chart.
        outcome.values.update({f"{k}{suffix}": v for k, v in report.stats.items() if v >= 0})
        per_class = report.per_class_ap
        outcome.tables[f"test/per-class-AP{suffix}"] = {
            "columns": ["AP50-95"],
            "rows": list(per_class),
            "data": [[v] for v in per_class.values()],
        }
        _write(out_dir, f"ground_truth{tail}.json", ground_truth)
        _write(out_dir, f"coco_stats{tail}.json", report.stats)
        _write(out_dir, f"per_class_ap{tail}.json", per_class)
        _write(out_dir, f"predictions{tail}.json", results[iou_type])
    return outcome


def _classification(
    predictor: Predictor, dataset: PreparedDataset, out_dir: Path
) -> TestEvaluation:
    labelled = read_class_split(dataset.root / "test")
    paths = [path for path, _ in labelled]
    top5 = list(predictor.top5(paths))
    ranked = [[cls for cls, _ in row] for row in top5]
    report = classification_report([cls for _, cls in labelled], ranked, dataset.names)
    log.info(
        "test split, %d images: top-1 %.3f, top-5 %.3f",
        len(paths),
        report.accuracy_top1,
        report.accuracy_top5,
    )
    names = dataset.names
    per_class = report.per_class
    outcome = TestEvaluation(
        values={"accuracy_top1": report.accuracy_top1, "accuracy_top5": report.accuracy_top5},
        tables={
            "test/per-class": {
                "columns": ["precision", "recall", "f1", "support"],
                "rows": list(per_class),
                "data": [list(metrics.values()) for metrics in per_class.values()],
            },
        },
        # Picsellia draws a HEATMAP as its confusion-matrix view (rows: true, columns: predicted).
        heatmaps={
            CONFUSION_MATRIX: {"categories": names, "values": report.confusion.tolist()},
        },
        plots={
            "test/confusion_matrix": plot_confusion(
                report.confusion,
                names,
                out_dir / "test_confusion_matrix.png",
                "test split confusion matrix (best weights)",
            )
        },
        evaluations=[
            Evaluation(
                file_name=dataset.source_name(path.name),
                classifications=[Classification(names[row[0][0]], row[0][1])],
            )
            for path, row in zip(paths, top5, strict=True)
        ],
    )
    _write(out_dir, "classification_report.json", {**outcome.values, "per_class": per_class})
    _write(out_dir, "confusion_matrix.json", {"names": names, "matrix": report.confusion.tolist()})
    return outcome


def _write(out_dir: Path, name: str, content: Any) -> None:
    (out_dir / name).write_text(json.dumps(content, indent=1))
