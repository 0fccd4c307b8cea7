"""pycocotools COCOeval on the test split: the 12 standard stats by name, and AP per class."""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

log = logging.getLogger(__name__)

STAT_NAMES = (
    "mAP50-95",
    "mAP50",
    "mAP75",
    "mAP50-95_small",
    "mAP50-95_medium",
    "mAP50-95_large",
    "AR1",
    "AR10",
    "AR100",
    "AR100_small",
    "AR100_medium",
    "AR100_large",
)


@dataclass(frozen=True)
class CocoReport:
    """`stats` hold -1 where COCO has nothing to measure (e.g. no small objects)."""

    stats: dict[str, float]
    per_class_ap: dict[str, float]
    summary: str


def evaluate_coco(
    ground_truth: dict[str, Any],
    results: list[dict[str, Any]],
    iou_type: Literal["bbox", "segm"] = "bbox",
) -> CocoReport:
    """Score `results` (COCO results format) against `ground_truth` (a COCO dataset dict)."""
    with contextlib.redirect_stdout(io.StringIO()) as noise:
        gt = COCO()
        gt.dataset = ground_truth
        gt.createIndex()
        if not results:
            # loadRes rejects an empty list; a model that predicts nothing scores 0, not a crash.
            return _empty_report(gt)
        # loadRes adds keys (area, id, numpy values) to the dicts it gets: give it copies.
        detections = gt.loadRes([dict(result) for result in results])
        evaluator = COCOeval(gt, detections, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
    with contextlib.redirect_stdout(io.StringIO()) as summary:
        evaluator.summarize()
    del noise
    stats = {name: float(v) for name, v in zip(STAT_NAMES, evaluator.stats, strict=True)}
    return CocoReport(stats, _per_class_ap(evaluator, gt), summary.getvalue())


def _per_class_ap(evaluator: COCOeval, gt: COCO) -> dict[str, float]:
    # precision: [iou thresholds, recall points, classes, area ranges, max dets]; area "all",
    # maxDets 100, averaged over IoU 0.50:0.95 and recall. A class with no ground truth in the
    # split has only -1 there: its AP is undefined, so it is left out rather than shown as 0.
    precision = evaluator.eval["precision"][:, :, :, 0, -1]
    per_class = {}
    for index, cat_id in enumerate(evaluator.params.catIds):
        values = precision[:, :, index]
        values = values[values > -1]
        if values.size:
            per_class[gt.cats[cat_id]["name"]] = float(np.mean(values))
    return per_class


def _empty_report(gt: COCO) -> CocoReport:
    zeros = dict.fromkeys(STAT_NAMES, 0.0)
    per_class = {cat["name"]: 0.0 for cat in gt.dataset.get("categories", [])}
    return CocoReport(zeros, per_class, "no predictions: every metric is 0")
