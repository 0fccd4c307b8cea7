"""Evaluate the best weights on the test split: write `evaluation/`, return what to send."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pictrain.data.prepare import PreparedDataset
from pictrain.evaluate.classification import (
    classification_report,
    plot_confusion,
    predict_top5,
    read_class_split,
)
from pictrain.evaluate.coco_eval import evaluate_coco
from pictrain.evaluate.ground_truth import coco_ground_truth, read_yolo_split
from pictrain.evaluate.predict import coco_results, predict, to_evaluation
from pictrain.platform.base import Classification, Evaluation

log = logging.getLogger(__name__)

# ultralytics' suffixes: (B) box metrics, (M) mask metrics; box metrics keep plain names.
IOU_SUFFIX = {"bbox": "", "segm": "(M)"}


@dataclass
class TestEvaluation:
    """Everything the test split gives the platform: values, tables, plots and evaluations."""

    values: dict[str, float] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    plots: list[Path] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)


def evaluate_test_split(
    task: str,
    weights: Path,
    dataset: PreparedDataset,
    image_size: int,
    device: str,
    min_score: float,
    out_dir: Path,
) -> TestEvaluation:
    out_dir.mkdir(parents=True, exist_ok=True)
    if task == "classify":
        return _classification(weights, dataset, image_size, device, out_dir)
    return _instances(task, weights, dataset, image_size, device, min_score, out_dir)


def _instances(
    task: str,
    weights: Path,
    dataset: PreparedDataset,
    image_size: int,
    device: str,
    min_score: float,
    out_dir: Path,
) -> TestEvaluation:
    images = read_yolo_split(dataset.images_dir("test"), dataset.labels_dir("test"))
    iou_types = ("bbox", "segm") if task == "segment" else ("bbox",)
    results: dict[str, list[dict[str, Any]]] = {t: [] for t in iou_types}
    outcome = TestEvaluation()
    for image, instances in predict(weights, images, image_size, device):
        for iou_type in iou_types:
            results[iou_type].extend(coco_results(image, instances, iou_type))
        name = dataset.source_name(image.path.name)
        outcome.evaluations.append(
            to_evaluation(name, instances, dataset.names, min_score, polygons=task == "segment")
        )
    ground_truth = coco_ground_truth(images, dataset.names)
    _write(out_dir, "ground_truth.json", ground_truth)
    for iou_type in iou_types:
        report = evaluate_coco(ground_truth, results[iou_type], iou_type)
        suffix = IOU_SUFFIX[iou_type]
        log.info("test split, %d images, %s:\n%s", len(images), iou_type, report.summary)
        # COCO's -1 means "nothing to measure" (e.g. no large objects): not a score to chart.
        outcome.values.update({f"{k}{suffix}": v for k, v in report.stats.items() if v >= 0})
        per_class = report.per_class_ap
        outcome.tables[f"test/per-class-AP{suffix}"] = {
            "columns": ["AP50-95"],
            "rows": list(per_class),
            "data": [[v] for v in per_class.values()],
        }
        tail = "" if iou_type == "bbox" else f"_{iou_type}"
        _write(out_dir, f"coco_stats{tail}.json", report.stats)
        _write(out_dir, f"per_class_ap{tail}.json", per_class)
        _write(out_dir, f"predictions{tail}.json", results[iou_type])
    return outcome


def _classification(
    weights: Path, dataset: PreparedDataset, image_size: int, device: str, out_dir: Path
) -> TestEvaluation:
    labelled = read_class_split(dataset.root / "test")
    paths = [path for path, _ in labelled]
    top5 = list(predict_top5(weights, paths, image_size, device))
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
            "test/confusion-matrix": {
                "columns": names,
                "rows": names,
                "data": report.confusion.tolist(),
            },
        },
        plots=[plot_confusion(report.confusion, names, out_dir / "test_confusion_matrix.png")],
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
