"""COCOeval on the test split: the standard stats by name (12 for boxes and masks, 10 for
keypoints), and AP per class.

Two engines run the same protocol: faster-coco-eval (matching and accumulation in C++, several
times faster on large test splits) scores the runs, and pycocotools, COCO's own code, is the
reference that the tests hold it to, stat for stat and class for class. Oriented boxes ("obb")
run the same protocol in either engine with the rotated IoU (`pictrain.evaluate.rotated`).
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
from pictrain.evaluate.rotated import Instances, rotated_evaluator

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

    "obb": annotations and results hold their oriented box's corners as `poly` (x1, y1, ...
    x4, y4) and its `area` (`pictrain.evaluate.rotated`). Neither input is changed. No results
    at all is a model that found nothing: it scores 0 where there is ground truth, and COCO's -1
    where there is none.
    """
    coco, evaluator_class = _engine(engine, rotated=iou_type == "obb")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = _index(coco(), ground_truth)
        if iou_type == "obb":  # results are taken as they are: loadRes would reset their areas
            annotations = [{**r, "id": i, "iscrowd": 0} for i, r in enumerate(results, 1)]
            detections = _index(coco(), {**ground_truth, "annotations": annotations})
        else:
            # loadRes adds keys (area, id, numpy values) to the dicts it gets: give it copies.
            # It also rejects an empty list: no detections are an empty dataset of the images.
            detections = (
                gt.loadRes([dict(result) for result in results])
                if results
                else _index(coco(), {**ground_truth, "annotations": []})
            )
        evaluator = evaluator_class(gt, detections, "bbox" if iou_type == "obb" else iou_type)
        if sigmas is not None:
            evaluator.params.kpt_oks_sigmas = np.array(sigmas, np.float64)
        evaluator.evaluate()
        evaluator.accumulate()
    with contextlib.redirect_stdout(io.StringIO()) as summary:
        evaluator.summarize()
    names = KEYPOINT_STAT_NAMES if iou_type == "keypoints" else STAT_NAMES
    stats = {name: float(v) for name, v in zip(names, evaluator.stats, strict=False)}
    return CocoReport(stats, _per_class_ap(evaluator, ground_truth), summary.getvalue())


def _engine(engine: Engine, rotated: bool) -> tuple[Any, Any]:
    """The engine's COCO class and its evaluator, made to score oriented boxes if `rotated`."""
    if engine == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        if rotated:
            return COCO, rotated_evaluator(COCOeval, _pycocotools_instances)
        return COCO, COCOeval
    from faster_coco_eval import COCO, COCOeval_faster

    evaluator = (
        rotated_evaluator(COCOeval_faster, _faster_instances) if rotated else COCOeval_faster
    )
    return COCO, partial(evaluator, print_function=print)  # its summary, as text


def _pycocotools_instances(evaluator: Any, image_id: int, category_id: int) -> Instances:
    return evaluator._gts[image_id, category_id], evaluator._dts[image_id, category_id]


def _faster_instances(evaluator: Any, image_id: int, category_id: int) -> Instances:
    return tuple(
        dataset.get_instances([image_id], [category_id], True)[0][0]
        for dataset in (evaluator.gt_dataset, evaluator.dt_dataset)
    )


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
    # (faster-coco-eval's keypoint evaluation does not even list such a class.)
    precision = evaluator.eval["precision"][:, :, :, 0, -1]
    position = {cat_id: index for index, cat_id in enumerate(evaluator.params.catIds)}
    per_class = {}
    for category in ground_truth["categories"]:
        if category["id"] not in position:
            continue
        values = precision[:, :, position[category["id"]]]
        values = values[values > -1]
        if values.size:
            per_class[category["name"]] = float(np.mean(values))
    return per_class
