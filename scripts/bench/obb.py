"""Oriented boxes: conversion against the plain-Python loop a user would write, and evaluation
of 5,000 images with the rotated IoU in faster-coco-eval against pycocotools.

The loop is what the issue names: read the COCO file (`json`), and for each object take the
minimum-area rectangle of its polygon points (`cv2.minAreaRect`, `cv2.boxPoints`), normalise,
format, write one label file per image. It opens no image and checks nothing; ours also reads
every image header, links every image and checks and counts every object
(`pictrain.data.obb`).
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pictrain.data.coco import load_coco
from pictrain.data.convert import convert_obb
from pictrain.data.labels import labelmap_from
from pictrain.data.polygons import CLIP_TOLERANCE
from pictrain.evaluate.coco_eval import STAT_NAMES, CocoReport, evaluate_coco
from pictrain.evaluate.rotated import areas
from scripts.bench.convert import CATEGORIES, IMAGE_SIDE, Case, read_labels, write_images
from scripts.bench.report import Bench, BenchResult, seconds
from scripts.bench.timing import compare
from tests.unit.coco_reference import TOLERANCE

LARGE_OBJECTS = 100_000  # --large: the conversion's size
POINTS = 24  # vertices of each object's outline: a turned ellipse, like a ship seen from above
# Both print 6 decimals of corners, cv2's in float32 and ours in float64; ours also puts a
# corner within CLIP_TOLERANCE of the border on it (float noise), as the rules say.
COORDINATE_TOLERANCE = 2e-6 + CLIP_TOLERANCE / IMAGE_SIDE
EVAL_WIDTH, EVAL_HEIGHT = 640, 480
EVAL_ROUNDS = 1  # after the warm-up: pycocotools takes a minute a run at 5,000 images


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("3. oriented boxes (obb)")
    group.add_argument(
        "--obb-objects",
        type=int,
        default=10_000,
        help=f"objects to convert (--large: {LARGE_OBJECTS:,})",
    )
    group.add_argument("--obb-per-image", type=int, default=10, help="objects per image")
    group.add_argument("--obb-eval-images", type=int, default=5000, help="test images")
    group.add_argument("--obb-eval-classes", type=int, default=10, help="categories")
    group.add_argument("--obb-eval-boxes", type=int, default=20, help="mean boxes per image")


def benchmarks(args: argparse.Namespace, work: Path) -> list[tuple[str, Bench]]:
    objects = LARGE_OBJECTS if args.large else args.obb_objects
    case = Case("obb", objects, args.obb_per_image, POINTS, work / "convert")
    sizes = (args.obb_eval_images, args.obb_eval_classes, args.obb_eval_boxes)
    return [
        (f"conversion, oriented boxes, {objects:,} outlines", partial(run_conversion, case, args)),
        (
            f"evaluation, oriented boxes, {args.obb_eval_images:,} images",
            partial(run_evaluation, *sizes, args.seed),
        ),
    ]


# ---- conversion --------------------------------------------------------------------------------


def run_conversion(case: Case, args: argparse.Namespace) -> BenchResult:
    _write_inputs(case, args.seed)
    outputs = {name: case.folder / f"out-{name}" for name in ("ours", "loop")}

    def contender(name: str, call: Any) -> Any:
        def prepare() -> Any:
            shutil.rmtree(outputs[name], ignore_errors=True)
            return call

        return prepare

    outcome = compare(
        contender("ours", partial(ours, case.coco, case.images_dir, outputs["ours"])),
        contender("loop", partial(plain_loop, case.coco, outputs["loop"])),
        args.repeats,
    )
    timing = outcome.timing
    agrees, agreement = _agreement(read_labels(outcome.ours), read_labels(outcome.theirs))
    speedup = 1 / timing.ratio
    return BenchResult(
        title=f"COCO → YOLO oriented boxes, {case.annotations:,} outlines",
        what="one COCO SEGMENTATION JSON + its image files → YOLO OBB label files",
        sizes=(
            f"{case.images:,} JPEG images of {IMAGE_SIDE} px, {case.annotations:,} outlines of "
            f"{POINTS} points at random angles ({case.per_image} per image), "
            f"{len(CATEGORIES)} categories"
        ),
        ours="`load_coco` + `labelmap_from` + `convert_obb` (reads every image header, links "
        "every image, checks, clips, counts)",
        theirs="the loop a user writes: `json.load`, per object `cv2.minAreaRect` + "
        "`cv2.boxPoints` on its points, normalise, `%.6f`, one file per image (JSON only)",
        timing=timing,
        agreement=agreement,
        reading=(
            "**Reading.** "
            + (
                f"Ours is {speedup:.2f}× faster than the loop"
                if speedup >= 1
                else f"Ours takes {1 / speedup:.2f}× the loop's time"
            )
            + ", while it also opens every image's header and links the image, and checks "
            "every outline (the loop trusts the JSON and writes no image). Both call "
            "cv2.minAreaRect once per object; ours checks the plain polygons and formats every "
            "number of a batch of images at once with numpy, where the loop formats one "
            "number at a time."
        ),
        metrics={
            "objects": case.annotations,
            "images": case.images,
            "speedup_vs_loop": round(speedup, 3),
            "us_per_object": round(timing.best_ours / case.annotations * 1e6, 3),
            "loop_us_per_object": round(timing.best_theirs / case.annotations * 1e6, 3),
            "outputs_agree": agrees,
        },
    )


def ours(coco: Path, images_dir: Path, out: Path) -> Path:
    """What a job does: one parse, the labelmap from it, the conversion."""
    index = load_coco(coco, keep=frozenset({"segmentation"}))
    convert_obb(index, images_dir, out, "train", labelmap_from([index]))
    return out / "labels" / "train"


def plain_loop(coco: Path, out: Path) -> Path:
    """The loop a user would write: no image opened, nothing checked."""
    with open(coco, encoding="utf-8") as file:
        document = json.load(file)
    names = sorted(category["name"] for category in document["categories"])
    classes = {c["id"]: names.index(c["name"]) for c in document["categories"]}
    by_image = defaultdict(list)
    for annotation in document["annotations"]:
        by_image[annotation["image_id"]].append(annotation)
    folder = out / "labels"
    folder.mkdir(parents=True)
    for image in document["images"]:
        size = (image["width"], image["height"])
        lines = []
        for annotation in by_image[image["id"]]:
            parts = [np.reshape(part, (-1, 2)) for part in annotation["segmentation"]]
            points = np.concatenate(parts).astype(np.float32)
            corners = cv2.boxPoints(cv2.minAreaRect(points)) / size
            text = " ".join(f"{v:.6f}" for v in corners.ravel())
            lines.append(f"{classes[annotation['category_id']]} {text}\n")
        stem = image["file_name"].rsplit(".", 1)[0]
        (folder / f"{stem}.txt").write_text("".join(lines))
    return folder


def _write_inputs(case: Case, seed: int) -> None:
    """`case.images` JPEG files and a COCO file of turned ellipses well inside them."""
    rng = np.random.default_rng(seed)
    images = write_images(case, rng)
    n = case.annotations
    length = rng.uniform(8, IMAGE_SIDE / 2, n)
    width = length * rng.uniform(0.15, 0.6, n)
    angle = rng.uniform(0, np.pi, n)
    reach = length / 2
    centre = rng.uniform(0, 1, (n, 2)) * (IMAGE_SIDE - 2 * reach[:, None]) + reach[:, None]
    ring = np.linspace(0, 2 * np.pi, POINTS, endpoint=False)
    categories = rng.integers(1, len(CATEGORIES) + 1, n).tolist()
    annotations = []
    for j in range(n):
        u = np.cos(ring) * length[j] / 2
        v = np.sin(ring) * width[j] / 2
        cos, sin = np.cos(angle[j]), np.sin(angle[j])
        xy = np.stack([u * cos - v * sin, u * sin + v * cos], axis=1) + centre[j]
        annotations.append(
            {
                "id": j + 1,
                "image_id": j // case.per_image + 1,
                "category_id": categories[j],
                "bbox": [*xy.min(0).round(2).tolist(), *np.ptp(xy, 0).round(2).tolist()],
                "iscrowd": 0,
                "segmentation": [xy.round(2).ravel().tolist()],
            }
        )
    coco = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": name} for i, name in enumerate(CATEGORIES, 1)],
    }
    case.coco.write_text(json.dumps(coco))


def _agreement(ours: dict[str, list[list[float]]], loop: dict[str, list[list[float]]]) -> Any:
    """The same files, lines and classes; corners to the printing precision."""
    lines = sum(map(len, ours.values()))
    if ours.keys() != loop.keys() or any(len(ours[k]) != len(loop[k]) for k in ours):
        return False, f"**no**: {lines:,} lines vs the loop's {sum(map(len, loop.values())):,}"
    rows = [(a, b) for k in ours for a, b in zip(ours[k], loop[k], strict=True)]
    same_class = all(a[0] == b[0] for a, b in rows)
    largest = max(
        (abs(x - y) for a, b in rows for x, y in zip(a[1:], b[1:], strict=True)), default=0
    )
    agrees = same_class and largest <= COORDINATE_TOLERANCE
    return agrees, (
        f"{'yes' if agrees else '**no**'}: {lines:,} label lines in {len(ours):,} files, the "
        f"same classes; largest corner difference {largest:.1e} (6 decimals each; ours puts "
        f"corners within {CLIP_TOLERANCE:g} px of the border on it)"
    )


# ---- evaluation --------------------------------------------------------------------------------


def run_evaluation(images: int, classes: int, boxes: int, seed: int) -> BenchResult:
    rng = np.random.default_rng(seed)
    ground_truth = _ground_truth(images, classes, boxes, rng)
    results = _detections(ground_truth, classes, rng)
    frozen = json.dumps(ground_truth), json.dumps(results)

    def engine(name: str) -> Any:
        def prepare() -> Any:
            gt, dt = (json.loads(text) for text in frozen)
            return lambda: _scores(evaluate_coco(gt, dt, "obb", engine=name))

        return prepare

    outcome = compare(engine("faster-coco-eval"), engine("pycocotools"), EVAL_ROUNDS)
    timing = outcome.timing
    difference = float(np.abs(np.subtract(outcome.ours, outcome.theirs)).max())
    agrees = difference <= TOLERANCE
    return BenchResult(
        title="COCO evaluation of oriented boxes (rotated IoU)",
        what="ground truth + detections (corners) → the 12 COCOeval stats, rotated IoU",
        sizes=(
            f"{images:,} images, {classes} classes, {len(ground_truth['annotations']):,} "
            f"ground-truth boxes, {len(results):,} detections"
        ),
        ours='`evaluate_coco(..., "obb")`: every overlap of an image and class computed at '
        "once in numpy (`pictrain.evaluate.rotated`), faster-coco-eval's matching",
        theirs='the same overlaps with `engine="pycocotools"`: COCO\'s own matching and '
        "accumulation in Python",
        timing=timing,
        agreement=(
            f"{'yes' if agrees else '**no**'}: largest difference of the 12 stats and the "
            f"{classes} per-class APs {difference:.1e} (tolerance {TOLERANCE:g}); "
            f"{STAT_NAMES[0]} {outcome.ours[0]:.4f}"
        ),
        reading=(
            f"**Reading.** {images:,} test images take {seconds(timing.best_ours)} to score "
            "with the rotated IoU, from the Python dicts to the per-class AP. Both sides share "
            "the overlaps (the IoU of every detection with every ground truth of its image and "
            "class, clipped exactly in one numpy pass); the rest is COCOeval's matching, in "
            "C++ on our side and in a Python loop per image and class in pycocotools "
            f"(ratio {timing.ratio:.2f}). Timed once after a warm-up."
        ),
        metrics={
            "images": images,
            "detections": len(results),
            "ground_truth": len(ground_truth["annotations"]),
            "seconds": round(timing.best_ours, 3),
            "stats_agree": agrees,
        },
    )


def _boxes(count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 5) centre, sides (log-uniform, elongated), angle: inside the image."""
    length = np.exp(rng.uniform(np.log(10), np.log(300), count))
    width = np.maximum(length * rng.uniform(0.15, 0.8, count), 4)
    reach = np.hypot(length, width)[:, None] / 2
    limit = np.array([EVAL_WIDTH, EVAL_HEIGHT])
    centre = reach + rng.uniform(0, 1, (count, 2)) * np.maximum(limit - 2 * reach, 1)
    return np.column_stack([centre, length, width, rng.uniform(0, 180, count)])


def _corners(box: np.ndarray) -> np.ndarray:
    (cx, cy), (w, h), degrees = box[:2], box[2:4], box[4]
    return cv2.boxPoints(((cx, cy), (w, h), degrees)).astype(np.float64)


def _entry(corners: np.ndarray, image_id: int, category_id: int, **extra: Any) -> dict[str, Any]:
    rounded = corners.round(2)
    (x1, y1), (x2, y2) = rounded.min(0), rounded.max(0)
    return {
        "image_id": image_id,
        "category_id": category_id,
        "poly": rounded.ravel().tolist(),
        "area": round(float(areas(rounded[None])[0]), 2),
        "bbox": [float(x1), float(y1), round(float(x2 - x1), 2), round(float(y2 - y1), 2)],
        **extra,
    }


def _ground_truth(images: int, classes: int, boxes: int, rng: np.random.Generator) -> dict:
    counts = rng.poisson(boxes, images)
    image_ids = np.repeat(np.arange(1, images + 1), counts)
    categories = rng.integers(1, classes + 1, len(image_ids))
    return {
        "images": [
            {"id": i, "file_name": f"{i:06d}.jpg", "width": EVAL_WIDTH, "height": EVAL_HEIGHT}
            for i in range(1, images + 1)
        ],
        "annotations": [
            _entry(_corners(box), int(i), int(c), id=n, iscrowd=0)
            for n, (box, i, c) in enumerate(
                zip(_boxes(len(image_ids), rng), image_ids, categories, strict=True), start=1
            )
        ],
        "categories": [{"id": c, "name": f"class-{c}"} for c in range(1, classes + 1)],
    }


def _detections(ground_truth: dict, classes: int, rng: np.random.Generator) -> list[dict]:
    """Jittered copies of 85% of the boxes (10% of the wrong class), plus false positives."""
    found = []
    for annotation in ground_truth["annotations"]:
        if rng.random() >= 0.85:
            continue
        corners = np.reshape(annotation["poly"], (4, 2))
        centre = corners.mean(0) + rng.normal(0, 0.03 * np.sqrt(annotation["area"]), 2)
        turn = np.radians(rng.normal(0, 2))
        rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
        moved = (corners - corners.mean(0)) @ rotation.T * rng.normal(1, 0.04) + centre
        wrong = rng.random() < 0.1
        category = int(rng.integers(1, classes + 1)) if wrong else annotation["category_id"]
        score = float(rng.uniform(0.3, 1.0))
        found.append(_entry(moved, annotation["image_id"], category, score=round(score, 4)))
    extra = rng.integers(0, 7, len(ground_truth["images"]))
    for image, count in zip(ground_truth["images"], extra.tolist(), strict=True):
        for box in _boxes(count, rng):
            category, score = int(rng.integers(1, classes + 1)), float(rng.uniform(0.001, 0.6))
            found.append(_entry(_corners(box), image["id"], category, score=round(score, 4)))
    return found


def _scores(report: CocoReport) -> list[float]:
    return [*report.stats.values(), *report.per_class_ap.values()]
