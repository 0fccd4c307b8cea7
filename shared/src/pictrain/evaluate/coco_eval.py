"""COCOeval on the test split: the standard stats by name (12 for boxes and masks, 10 for
keypoints), and AP per class.

Two engines run the same protocol: faster-coco-eval (matching and accumulation in C++, several
times faster on large test splits) scores the runs, and pycocotools, COCO's own code, is the
reference that the tests hold it to, stat for stat and class for class.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np

from pictrain.config import IouType

log = logging.getLogger(__name__)

Engine = Literal["faster-coco-eval", "pycocotools"]

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
# COCO's keypoint stats (OKS instead of IoU, 20 detections per image, no small objects), named
# as COCO's keypoint leaderboard names them (AR^50, AR^M...).
KEYPOINT_STAT_NAMES = (
    "mAP50-95",
    "mAP50",
    "mAP75",
    "mAP50-95_medium",
    "mAP50-95_large",
    "AR",
    "AR50",
    "AR75",
    "AR_medium",
    "AR_large",
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
    iou_type: IouType = "bbox",
    engine: Engine = "faster-coco-eval",
    sigmas: Sequence[float] | None = None,
) -> CocoReport:
    """Score `results` (COCO results format) against `ground_truth` (a COCO dataset dict);
    keypoints with these OKS `sigmas` (one per point; COCO's 17 by default).

    Neither input is changed. No results at all is a model that found nothing: it scores 0
    where there is ground truth, and COCO's -1 where there is none.
    """
    if engine == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    else:
        from faster_coco_eval import COCO, COCOeval_faster

        COCOeval = partial(COCOeval_faster, print_function=print)  # its summary, as text
    with contextlib.redirect_stdout(io.StringIO()):
        gt = _index(COCO(), ground_truth)
        # loadRes adds keys (area, id, numpy values) to the dicts it gets: give it copies. It
        # also rejects an empty list, so no detections are an empty dataset of the same images.
        detections = (
            gt.loadRes([dict(result) for result in results])
            if results
            else _index(COCO(), {**ground_truth, "annotations": []})
        )
        evaluator = COCOeval(gt, detections, iou_type)
        if sigmas is not None:
            evaluator.params.kpt_oks_sigmas = np.array(sigmas, np.float64)
        evaluator.evaluate()
        evaluator.accumulate()
    with contextlib.redirect_stdout(io.StringIO()) as summary:
        evaluator.summarize()
    names = KEYPOINT_STAT_NAMES if iou_type == "keypoints" else STAT_NAMES
    stats = {name: float(v) for name, v in zip(names, evaluator.stats, strict=False)}
    return CocoReport(stats, _per_class_ap(evaluator, ground_truth), summary.getvalue())


def _index(coco: Any, dataset: dict[str, Any]) -> Any:
    """A COCO object of `dataset` (a shallow copy: the engines add keys to its top level)."""
    coco.dataset = {**dataset, "annotations": [dict(a) for a in dataset["annotations"]]}
    coco.createIndex()
    return coco


def _per_class_ap(evaluator: Any, ground_truth: dict[str, Any]) -> dict[str, float]:
    """In the order of `ground_truth["categories"]` (the labelmap's)."""
    # precision: [iou thresholds, recall points, classes, area ranges, max dets]; area "all",
    # maxDets 100, averaged over IoU 0.50:0.95 and recall. A class with no ground truth in the
    # split has only -1 there: its AP is undefined, so it is left out rather than shown as 0.
    precision = evaluator.eval["precision"][:, :, :, 0, -1]
    position = {cat_id: index for index, cat_id in enumerate(evaluator.params.catIds)}
    per_class = {}
    for category in ground_truth["categories"]:
        values = precision[:, :, position[category["id"]]]
        values = values[values > -1]
        if values.size:
            per_class[category["name"]] = float(np.mean(values))
    return per_class
