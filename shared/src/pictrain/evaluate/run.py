"""Evaluate best weights on the test split; write the evaluation folder; return what to send."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pictrain.evaluate.coco_eval import CocoReport, evaluate_coco
from pictrain.evaluate.ground_truth import coco_ground_truth, read_yolo_split
from pictrain.evaluate.predict import coco_results, predict, to_evaluation
from pictrain.platform.base import Evaluation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TestEvaluation:
    report: CocoReport
    evaluations: list[Evaluation]


def evaluate_split(
    weights: Path,
    images_dir: Path,
    labels_dir: Path,
    names: list[str],
    image_size: int,
    device: str,
    min_score: float,
    out_dir: Path,
    source_name: Callable[[str], str] = lambda name: name,
) -> TestEvaluation:
    """`source_name` maps a converted image name back to the name the platform knows."""
    images = read_yolo_split(images_dir, labels_dir)
    results, evaluations = [], []
    for image, boxes in predict(weights, images, image_size, device):
        results.extend(coco_results(image, boxes))
        evaluations.append(to_evaluation(source_name(image.path.name), boxes, names, min_score))
    ground_truth = coco_ground_truth(images, names)
    report = evaluate_coco(ground_truth, results)
    log.info("test split, %d images:\n%s", len(images), report.summary)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in {
        "coco_stats.json": report.stats,
        "per_class_ap.json": report.per_class_ap,
        "predictions.json": results,
        "ground_truth.json": ground_truth,
    }.items():
        (out_dir / name).write_text(json.dumps(content, indent=1))
    return TestEvaluation(report, evaluations)
