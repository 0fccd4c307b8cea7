"""COCO evaluation: pictrain's `evaluate_coco` (faster-coco-eval) vs pycocotools, the reference
it must agree with to 1e-12 (the stats and AP per class): boxes, and keypoints (pose's OKS)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pictrain.data.keypoints import AREA_PER_BOX, COCO_SIGMAS
from pictrain.evaluate.coco_eval import STAT_NAMES, CocoReport, evaluate_coco
from scripts.bench.report import Bench, BenchResult, seconds
from scripts.bench.timing import compare
from tests.unit.coco_reference import TOLERANCE  # the tests' agreement, measured at scale

IMAGE_WIDTH, IMAGE_HEIGHT = 640, 480
SIDE_RANGE = (8.0, 320.0)  # box sides, log-uniform: small, medium and large COCO areas
FOUND = 0.85  # share of ground-truth boxes with a matching detection
RIGHT_CLASS = 0.9  # share of those detections with the right class
MAX_FALSE_POSITIVES = 6  # per image, uniform 0..this


@dataclass(frozen=True)
class EvalSizes:
    images: int
    classes: int
    boxes: int  # mean ground-truth boxes per image


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("2. COCO evaluation")
    group.add_argument("--eval-images", type=int, default=5000, help="test images")
    group.add_argument("--eval-classes", type=int, default=10, help="categories")
    group.add_argument("--eval-boxes", type=int, default=20, help="mean boxes per image")
    group.add_argument(
        "--eval-poses",
        type=int,
        default=5,
        help=f"mean pose objects per image ({len(COCO_SIGMAS)} keypoints each)",
    )


def benchmarks(args: argparse.Namespace, work: Path) -> list[tuple[str, Bench]]:
    sizes = EvalSizes(args.eval_images, args.eval_classes, args.eval_boxes)
    poses = EvalSizes(args.eval_images, POSE_CLASSES, args.eval_poses)
    return [
        ("evaluation", partial(run, sizes, args.repeats, args.seed)),
        ("evaluation, keypoints", partial(run_keypoints, poses, args.repeats, args.seed)),
    ]


def _compared(
    ground_truth: dict[str, Any], results: list[dict[str, Any]], repeats: int, **options: Any
) -> tuple[Any, float]:
    """Both engines timed on copies of the same inputs (both add fields to the dicts they are
    given): their outcome, and the largest difference of the stats and per-class APs."""
    frozen = json.dumps(ground_truth), json.dumps(results)

    def ours() -> Any:
        gt, dt = (json.loads(text) for text in frozen)
        return lambda: _scores(evaluate_coco(gt, dt, **options))

    def theirs() -> Any:
        gt, dt = (json.loads(text) for text in frozen)
        return lambda: _scores(evaluate_coco(gt, dt, engine="pycocotools", **options))

    outcome = compare(ours, theirs, repeats)
    return outcome, float(np.abs(np.subtract(outcome.ours, outcome.theirs)).max())


def run(sizes: EvalSizes, repeats: int, seed: int) -> BenchResult:
    rng = np.random.default_rng(seed)
    ground_truth = _ground_truth(sizes, rng)
    results = _detections(ground_truth, sizes.classes, rng)
    outcome, difference = _compared(ground_truth, results, repeats)
    timing = outcome.timing
    agrees = difference <= TOLERANCE
    return BenchResult(
        title="COCO bbox evaluation",
        what="ground truth + detections (COCO results) → the 12 COCOeval stats",
        sizes=(
            f"{sizes.images:,} images, {sizes.classes} classes, "
            f"{len(ground_truth['annotations']):,} ground-truth boxes, "
            f"{len(results):,} detections"
        ),
        ours="`pictrain.evaluate.coco_eval.evaluate_coco` (faster-coco-eval + per-class AP)",
        theirs='the same with `engine="pycocotools"`: COCO\'s own `COCOeval` (evaluate, '
        "accumulate, summarize) + per-class AP",
        timing=timing,
        agreement=(
            f"{'yes' if agrees else '**no**'}: largest difference of the 12 stats and the "
            f"{sizes.classes} per-class APs {difference:.1e} (tolerance {TOLERANCE:g}); "
            f"{STAT_NAMES[0]} {outcome.ours[0]:.4f}"
        ),
        reading=_reading(timing.ratio, timing.best_ours - timing.best_theirs, sizes.images, agrees),
    )


POSE_CLASSES = 2
POINT_NOISE = 0.04  # detected keypoints: normal noise of this share of the box side


def run_keypoints(sizes: EvalSizes, repeats: int, seed: int) -> BenchResult:
    """COCO's keypoint protocol (OKS, COCO's 17 sigmas) on people of 17 keypoints."""
    rng = np.random.default_rng(seed)
    ground_truth = _ground_truth(sizes, rng)
    for annotation in ground_truth["annotations"]:
        annotation["keypoints"], annotation["num_keypoints"] = _keypoints(annotation["bbox"], rng)
        annotation["area"] = round(annotation["area"] * AREA_PER_BOX, 2)
    results = _keypoint_detections(ground_truth, rng)
    outcome, difference = _compared(
        ground_truth, results, repeats, iou_type="keypoints", sigmas=COCO_SIGMAS
    )
    timing = outcome.timing
    agrees = difference <= TOLERANCE
    return BenchResult(
        title="COCO keypoint evaluation (pose)",
        what="ground truth + detections (COCO keypoint results) → the 10 keypoint stats (OKS)",
        sizes=(
            f"{sizes.images:,} images, {sizes.classes} classes, "
            f"{len(ground_truth['annotations']):,} ground-truth objects of "
            f"{len(COCO_SIGMAS)} keypoints, {len(results):,} detections"
        ),
        ours='`evaluate_coco(..., "keypoints", sigmas=...)` (faster-coco-eval + per-class AP)',
        theirs='the same with `engine="pycocotools"`: COCO\'s own `COCOeval` on keypoints',
        timing=timing,
        agreement=(
            f"{'yes' if agrees else '**no**'}: largest difference of the 10 stats and the "
            f"{sizes.classes} per-class APs {difference:.1e} (tolerance {TOLERANCE:g}); "
            f"OKS mAP50-95 {outcome.ours[0]:.4f}"
        ),
        reading=(
            "**Reading.** COCO's keypoint protocol: OKS with COCO's 17 sigmas, 10 thresholds, "
            "at most 20 detections per image, medium and large areas. Both engines compute OKS "
            "in Python with numpy (faster-coco-eval one ground truth against all detections at "
            "once, pycocotools pair by pair) and match in their own way (C++ here). "
            + (
                f"Ours is {1 / timing.ratio:.1f}× faster."
                if timing.ratio < 1
                else f"Ours is not faster here (ratio {timing.ratio:.2f})."
            )
            + (" The numbers agree." if agrees else " **The numbers differ beyond the tolerance.**")
        ),
    )


def _keypoints(box: list[float], rng: np.random.Generator) -> tuple[list[float], int]:
    """17 points inside the box, a fifth unlabelled (0, 0, 0), the others visible or occluded."""
    x, y, w, h = box
    points = len(COCO_SIGMAS)
    xs, ys = rng.uniform(x, x + w, points), rng.uniform(y, y + h, points)
    visibility = rng.choice([0, 1, 2], points, p=[0.2, 0.2, 0.6])
    flat = [
        v
        for px, py, vis in zip(xs.round(2), ys.round(2), visibility, strict=True)
        for v in ((float(px), float(py), int(vis)) if vis else (0.0, 0.0, 0))
    ]
    return flat, int(np.count_nonzero(visibility))


def _keypoint_detections(ground_truth: dict[str, Any], rng: np.random.Generator) -> list[Any]:
    """Most objects found with jittered points (noise in proportion to the box), a few strays."""
    results = []
    for a in ground_truth["annotations"]:
        if rng.random() >= FOUND:
            continue
        x, y, w, h = a["bbox"]
        points = np.array(a["keypoints"], np.float64).reshape(-1, 3)
        empty = points[:, 2] == 0
        points[empty, :2] = rng.uniform([x, y], [x + w, y + h], (int(empty.sum()), 2))
        points[:, :2] += rng.normal(0, POINT_NOISE, (len(points), 2)) * (w, h)
        points[:, 2] = rng.uniform(0, 1, len(points))
        results.append(
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "keypoints": points.round(2).ravel().tolist(),
                "score": round(float(rng.uniform(0.3, 1.0)), 4),
            }
        )
    for image in ground_truth["images"]:
        if rng.random() < 0.3:
            stray = rng.uniform(0, [IMAGE_WIDTH, IMAGE_HEIGHT, 1], (len(COCO_SIGMAS), 3))
            category = int(rng.integers(1, POSE_CLASSES + 1))
            score = round(float(rng.uniform(0.001, 0.6)), 4)
            results.append(
                {
                    "image_id": image["id"],
                    "category_id": category,
                    "keypoints": stray.round(2).ravel().tolist(),
                    "score": score,
                }
            )
    return results


def _ground_truth(sizes: EvalSizes, rng: np.random.Generator) -> dict[str, Any]:
    counts = rng.poisson(sizes.boxes, size=sizes.images)
    boxes = _random_boxes(int(counts.sum()), rng)
    image_ids = np.repeat(np.arange(1, sizes.images + 1), counts)
    categories = rng.integers(1, sizes.classes + 1, size=len(boxes))
    return {
        "images": [
            {"id": i, "file_name": f"{i:06d}.jpg", "width": IMAGE_WIDTH, "height": IMAGE_HEIGHT}
            for i in range(1, sizes.images + 1)
        ],
        "annotations": [
            {
                "id": n + 1,
                "image_id": int(image_ids[n]),
                "category_id": int(categories[n]),
                "bbox": box.tolist(),
                "area": float(box[2] * box[3]),
                "iscrowd": 0,
            }
            for n, box in enumerate(boxes)
        ],
        "categories": [{"id": c, "name": f"class-{c}"} for c in range(1, sizes.classes + 1)],
    }


def _detections(
    ground_truth: dict[str, Any], classes: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Jittered copies of most ground-truth boxes, some of the wrong class, plus false positives."""
    annotations = [a for a in ground_truth["annotations"] if rng.random() < FOUND]
    boxes = np.array([a["bbox"] for a in annotations])
    sides = boxes[:, 2:].repeat(2, axis=1)
    jittered = _clip(boxes + rng.normal(0, 0.08, size=boxes.shape) * sides)
    wrong = rng.random(len(annotations)) >= RIGHT_CLASS
    categories = np.where(
        wrong,
        rng.integers(1, classes + 1, size=len(annotations)),
        [a["category_id"] for a in annotations],
    )
    found = [
        _result(a["image_id"], int(c), box, score)
        for a, c, box, score in zip(
            annotations, categories, jittered, rng.uniform(0.3, 1.0, len(annotations)), strict=True
        )
    ]
    n_false = rng.integers(0, MAX_FALSE_POSITIVES + 1, size=len(ground_truth["images"]))
    false_boxes = _random_boxes(int(n_false.sum()), rng)
    false_images = np.repeat([image["id"] for image in ground_truth["images"]], n_false)
    false_classes = rng.integers(1, classes + 1, size=len(false_boxes))
    false_scores = rng.uniform(0.001, 0.6, size=len(false_boxes))
    return found + [
        _result(int(i), int(c), box, score)
        for i, c, box, score in zip(
            false_images, false_classes, false_boxes, false_scores, strict=True
        )
    ]


def _random_boxes(count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` x, y, w, h boxes inside the image, sides log-uniform in SIDE_RANGE."""
    low, high = np.log(SIDE_RANGE)
    wh = np.exp(rng.uniform(low, high, size=(count, 2)))
    wh = np.minimum(wh, [IMAGE_WIDTH, IMAGE_HEIGHT])
    xy = rng.uniform(0, 1, size=(count, 2)) * ([IMAGE_WIDTH, IMAGE_HEIGHT] - wh)
    return np.hstack([xy, wh]).round(2)


def _clip(boxes: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(boxes[:, 0], 0), np.maximum(boxes[:, 1], 0)
    x2 = np.minimum(boxes[:, 0] + boxes[:, 2], IMAGE_WIDTH)
    y2 = np.minimum(boxes[:, 1] + boxes[:, 3], IMAGE_HEIGHT)
    return np.stack([x1, y1, np.maximum(x2 - x1, 1), np.maximum(y2 - y1, 1)], axis=1).round(2)


def _result(image_id: int, category_id: int, box: np.ndarray, score: float) -> dict[str, Any]:
    return {
        "image_id": image_id,
        "category_id": category_id,
        "bbox": box.tolist(),
        "score": round(float(score), 4),
    }


def _scores(report: CocoReport) -> list[float]:
    """The stats, then the AP of each class: what must agree between the engines."""
    return [*report.stats.values(), *report.per_class_ap.values()]


def _reading(ratio: float, saved: float, images: int, agrees: bool) -> str:
    verdict = (
        f"ours is {1 / ratio:.1f}× faster ({seconds(-saved)} less on {images:,} images)"
        if ratio < 1
        else f"ours is not faster here (ratio {ratio:.2f})"
    )
    consequence = (
        "The numbers agree, so the switch changed no reported metric."
        if agrees
        else "The numbers differ beyond the tolerance: the engine must not score runs until "
        "the difference is explained."
    )
    return (
        "**Reading.** Both sides run the standard COCO bbox protocol (10 IoU thresholds, 101 "
        "recall points, 4 area ranges, at most 1/10/100 detections per image) on the same "
        "ground truth and detections, timed from the Python dicts to the summary and the "
        "per-class AP: index building, `loadRes`, evaluate, accumulate, summarize. pycocotools "
        "matches detections in a Python loop per image and class (only IoU is in C); "
        "faster-coco-eval does matching and accumulation in C++ (its only dependency is numpy). "
        f"Here {verdict}. {consequence} The target is at least 5× at 5,000 images and "
        "100,000 detections."
    )
