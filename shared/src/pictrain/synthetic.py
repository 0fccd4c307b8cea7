"""Synthetic COCO data for each task: coloured shapes a tiny YOLO learns in minutes on a CPU,
one colour per class.

Written in the local folder contract, `out_dir/<split>/images/*.jpg` and
`out_dir/<split>/annotations.json`. Category ids are 3, 7 and 12, not 0..n-1, and each split
gives them to different names, as separate dataset versions on the platform do: code that maps
labels by id instead of by name fails on this data.

- detect:   1 to 4 shapes per image, boxes (and their polygons);
- segment:  the same images; polygons (a circle is a 24-point polygon), and every
            `RLE_EVERY`-th object as a compressed RLE mask (iscrowd 0) to exercise that path;
- classify: one larger shape per image, one annotation per image with its box;
- pose:     the detection images, each shape with 5 keypoints (`POSE_POINTS`: its top, its
            left and right ends, its bottom, its centre), written as Picsellia's KEYPOINT export
            writes them: `bbox` the hull of the labelled points, `area` 1.0, every category
            with the `keypoints` names and the `skeleton`; every `OCCLUDED_EVERY`-th point is
            labelled occluded (v 1).
- obb:      1 to 4 bars per image, each turned by its own angle, as polygons of their 4
            corners (and their upright boxes).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as coco_mask

from pictrain.splitnames import canonical_split

# Large, saturated, one colour per class on muted backgrounds: easy to learn from scratch.
SHAPES = {"circle": (220, 40, 40), "square": (40, 190, 60), "triangle": (40, 90, 230)}
BARS = {"red-bar": SHAPES["circle"], "green-bar": SHAPES["square"], "blue-bar": SHAPES["triangle"]}
BAR_LENGTH, BAR_WIDTH = 0.9, 0.3  # of the box side: the bar, turned, stays inside the box
CATEGORY_IDS = (3, 7, 12)
MAX_OBJECTS = 4
SIZE_RANGE = (0.18, 0.42)  # side of a shape, as a fraction of the image side
CLASSIFY_SIZE_RANGE = (0.35, 0.7)  # one shape per image: larger, so 64 px images still work
CIRCLE_VERTICES = 24
RLE_EVERY = 5  # segment: objects whose annotation id is a multiple of this are RLE masks
POSE_POINTS = ("top", "left_end", "right_end", "bottom", "centre")
POSE_EDGES = [[1, 5], [2, 5], [3, 5], [4, 5]]  # each end to the centre, numbered from 1
OCCLUDED_EVERY = 7
_PLACEMENT_TRIES = 100

Box = tuple[int, int, int]  # x, y, side
Outline = list[tuple[float, float]]  # in COCO coordinates


class _Shape(NamedTuple):
    """One drawn shape: its class, the square it was placed in, its outline."""

    name: str
    box: Box
    outline: Outline


# (annotation id, image id, category id, shape, image side) -> COCO annotation
Annotate = Callable[[int, int, int, _Shape, int], dict[str, Any]]


@dataclass(frozen=True)
class _Task:
    max_objects: int
    size_range: tuple[float, float]
    annotate: Annotate
    palette: Mapping[str, tuple[int, int, int]] = field(default_factory=lambda: SHAPES)
    turned: bool = False  # bars at a random angle, instead of the palette's shapes
    category_keys: Mapping[str, Any] = field(default_factory=dict)  # added to every category


def make_detection_dataset(
    out_dir: Path,
    n_images: int = 200,
    image_size: int = 256,
    seed: int = 0,
    splits: Mapping[str, int] | None = None,
) -> dict[str, Path]:
    """Write the dataset; return each split's COCO file. Same arguments, same bytes.

    `splits` weighs the splits (train=80, val=10, test=10 of 200 images gives 160/20/20); by
    default every image is in train. A split's `images/` folder is replaced.
    """
    task = _Task(MAX_OBJECTS, SIZE_RANGE, _annotation)
    return _make(task, out_dir, n_images, image_size, seed, splits)


def make_segmentation_dataset(
    out_dir: Path,
    n_images: int = 200,
    image_size: int = 256,
    seed: int = 0,
    splits: Mapping[str, int] | None = None,
) -> dict[str, Path]:
    """The detection dataset's images, with some objects given as RLE masks instead."""
    task = _Task(MAX_OBJECTS, SIZE_RANGE, _segment_annotation)
    return _make(task, out_dir, n_images, image_size, seed, splits)


def make_pose_dataset(
    out_dir: Path,
    n_images: int = 200,
    image_size: int = 256,
    seed: int = 0,
    splits: Mapping[str, int] | None = None,
) -> dict[str, Path]:
    """The detection dataset's images, each shape with its keypoints, as Picsellia exports a
    KEYPOINT version."""
    skeleton = {"keypoints": list(POSE_POINTS), "skeleton": POSE_EDGES}
    task = _Task(MAX_OBJECTS, SIZE_RANGE, _pose_annotation, category_keys=skeleton)
    return _make(task, out_dir, n_images, image_size, seed, splits)


def make_classification_dataset(
    out_dir: Path,
    n_images: int = 200,
    image_size: int = 256,
    seed: int = 0,
    splits: Mapping[str, int] | None = None,
) -> dict[str, Path]:
    """One shape per image; its annotation's category is the image's class."""
    task = _Task(1, CLASSIFY_SIZE_RANGE, _classify_annotation)
    return _make(task, out_dir, n_images, image_size, seed, splits)


def make_obb_dataset(
    out_dir: Path,
    n_images: int = 200,
    image_size: int = 256,
    seed: int = 0,
    splits: Mapping[str, int] | None = None,
) -> dict[str, Path]:
    """Bars at random angles: their minimum-area rectangles are the bars themselves."""
    task = _Task(MAX_OBJECTS, SIZE_RANGE, _bar_annotation, palette=BARS, turned=True)
    return _make(task, out_dir, n_images, image_size, seed, splits)


def _make(
    task: _Task,
    out_dir: Path,
    n_images: int,
    image_size: int,
    seed: int,
    splits: Mapping[str, int] | None,
) -> dict[str, Path]:
    counts = split_counts(n_images, splits or {"train": 1})
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32, not {image_size}")
    rng = np.random.default_rng(seed)
    files: dict[str, Path] = {}
    first_id = 1
    for position, (split, count) in enumerate(counts.items()):
        image_ids = range(first_id, first_id + count)
        files[split] = _write_split(task, out_dir / split, image_ids, position, image_size, rng)
        first_id += count
    return files


def _write_split(
    task: _Task,
    folder: Path,
    image_ids: range,
    position: int,
    image_size: int,
    rng: np.random.Generator,
) -> Path:
    categories = _categories(position, list(task.palette))
    categories = [{**entry, **task.category_keys} for entry in categories]
    category_of = {entry["name"]: entry["id"] for entry in categories}
    images_dir = folder / "images"
    shutil.rmtree(images_dir, ignore_errors=True)
    images_dir.mkdir(parents=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id in image_ids:
        file_name = f"{image_id:06d}.jpg"
        picture, shapes = _draw_image(rng, image_size, task)
        picture.save(images_dir / file_name, quality=90)
        images.append(
            {"id": image_id, "file_name": file_name, "width": image_size, "height": image_size}
        )
        for shape in shapes:
            annotation_id = len(annotations) + 1
            category_id = category_of[shape.name]
            annotations.append(
                task.annotate(annotation_id, image_id, category_id, shape, image_size)
            )
    coco = {
        "info": {"description": "pictrain synthetic shapes", "version": "1"},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    dest = folder / "annotations.json"
    dest.write_text(json.dumps(coco), encoding="utf-8")
    return dest


def split_counts(n_images: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Images per split in proportion to `weights` (largest remainder); each gets at least one."""
    for name, weight in weights.items():
        if canonical_split(name) is None:
            raise ValueError(f"unknown split name {name!r}")
        if weight <= 0:
            raise ValueError(f"split {name} needs a positive weight, not {weight}")
    total = sum(weights.values())
    exact = {name: n_images * weight / total for name, weight in weights.items()}
    counts = {name: math.floor(value) for name, value in exact.items()}
    by_remainder = sorted(exact, key=lambda name: counts[name] - exact[name])
    for name in by_remainder[: n_images - sum(counts.values())]:
        counts[name] += 1
    if empty := [name for name, count in counts.items() if count == 0]:
        raise ValueError(f"{n_images} images leave no image for split(s) {', '.join(empty)}")
    return counts


def _categories(position: int, names: list[str]) -> list[dict[str, Any]]:
    """Each split rotates the ids over the names, and lists them out of id order."""
    shift = position % len(CATEGORY_IDS)
    ids = CATEGORY_IDS[shift:] + CATEGORY_IDS[:shift]
    categories = [{"id": cid, "name": name} for cid, name in zip(ids, names, strict=True)]
    return categories[::-1]


def _draw_image(
    rng: np.random.Generator, size: int, task: _Task
) -> tuple[Image.Image, list[_Shape]]:
    picture = Image.fromarray(_background(rng, size))
    draw = ImageDraw.Draw(picture)
    shapes: list[_Shape] = []
    for _ in range(int(rng.integers(1, task.max_objects + 1))):
        box = _place(rng, size, task.size_range, [shape.box for shape in shapes])
        if box is None:
            continue
        name = list(task.palette)[int(rng.integers(len(task.palette)))]
        jitter = rng.integers(-20, 21, size=3)
        color = tuple(int(c) for c in np.clip(np.array(task.palette[name]) + jitter, 0, 255))
        if task.turned:
            outline = drawn = _bar(box, float(rng.uniform(0, 180)))
        else:
            outline, drawn = _outline(name, box), _outline(name, box, pixel=True)
        draw.polygon([tuple(p) for p in drawn], fill=color)
        shapes.append(_Shape(name, box, outline))
    return picture, shapes


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A muted two-colour gradient with noise, far from the shapes' saturated colours."""
    start, end = rng.integers(70, 180, size=(2, 1)) + rng.integers(-15, 16, size=(2, 3))
    ramp = np.linspace(0.0, 1.0, size)[:, None] if rng.random() < 0.5 else np.linspace(0, 1, size)
    ramp = np.broadcast_to(ramp, (size, size))[..., None]
    pixels = start + (end - start) * ramp + rng.normal(0.0, 10.0, (size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _place(
    rng: np.random.Generator, size: int, size_range: tuple[float, float], taken: list[Box]
) -> Box | None:
    """A square box that overlaps none of `taken`, or None when the image is full."""
    low, high = (round(size * fraction) for fraction in size_range)
    for _ in range(_PLACEMENT_TRIES):
        side = int(rng.integers(low, high + 1))
        x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        if all(x + side <= a or a + s <= x or y + side <= b or b + s <= y for a, b, s in taken):
            return x, y, side
    return None


def _outline(name: str, box: Box, pixel: bool = False) -> list[tuple[float, float]]:
    """Polygon of the shape in COCO coordinates, or in pixel centres (last pixel inclusive)."""
    x, y, side = box
    extent = side - 1 if pixel else side
    if name == "square":
        return [(x, y), (x + extent, y), (x + extent, y + extent), (x, y + extent)]
    if name == "triangle":
        return [(x, y + extent), (x + extent, y + extent), (x + extent / 2, y)]
    radius = extent / 2
    angles = np.linspace(0.0, 2 * math.pi, CIRCLE_VERTICES, endpoint=False)
    return [(x + radius + radius * math.cos(a), y + radius + radius * math.sin(a)) for a in angles]


def _bar(box: Box, degrees: float) -> Outline:
    """The corners of a bar centred in the box, turned by `degrees`."""
    x, y, side = box
    along = np.array([math.cos(math.radians(degrees)), math.sin(math.radians(degrees))])
    across = np.array([-along[1], along[0]])
    half_length, half_width = BAR_LENGTH * side / 2 * along, BAR_WIDTH * side / 2 * across
    centre = np.array([x + side / 2, y + side / 2])
    corners = [
        centre + a * half_length + b * half_width for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))
    ]
    return [(float(cx), float(cy)) for cx, cy in corners]


def _annotation(
    annotation_id: int, image_id: int, category_id: int, shape: _Shape, image_size: int
) -> dict[str, Any]:
    """Box, and the shape's polygon as its segmentation."""
    (x, y, side), outline = shape.box, shape.outline
    edges = zip(outline, outline[1:] + outline[:1], strict=True)
    area = 0.5 * abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in edges))
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": [x, y, side, side],
        "area": round(area, 2),
        "iscrowd": 0,
        "segmentation": [[round(v, 2) for point in outline for v in point]],
    }


def _segment_annotation(
    annotation_id: int, image_id: int, category_id: int, shape: _Shape, image_size: int
) -> dict[str, Any]:
    """The polygon annotation, or for every RLE_EVERY-th object the same shape as a mask."""
    annotation = _annotation(annotation_id, image_id, category_id, shape, image_size)
    if annotation_id % RLE_EVERY == 0:
        parts = coco_mask.frPyObjects(annotation["segmentation"], image_size, image_size)
        rle = coco_mask.merge(parts)
        annotation["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
        annotation["area"] = int(coco_mask.area(rle))
    return annotation


def _bar_annotation(
    annotation_id: int, image_id: int, category_id: int, shape: _Shape, image_size: int
) -> dict[str, Any]:
    """The bar's corners as its polygon, and their upright box."""
    annotation = _annotation(annotation_id, image_id, category_id, shape, image_size)
    xs, ys = [x for x, _ in shape.outline], [y for _, y in shape.outline]
    x, y = min(xs), min(ys)
    annotation["bbox"] = [round(v, 2) for v in (x, y, max(xs) - x, max(ys) - y)]
    return annotation


def _classify_annotation(
    annotation_id: int, image_id: int, category_id: int, shape: _Shape, image_size: int
) -> dict[str, Any]:
    """A classification export: the image's class, with the shape's box."""
    x, y, side = shape.box
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": [x, y, side, side],
        "area": side * side,
        "iscrowd": 0,
    }


def _pose_annotation(
    annotation_id: int, image_id: int, category_id: int, shape: _Shape, image_size: int
) -> dict[str, Any]:
    """The shape's POSE_POINTS; bbox and area as Picsellia's export writes them."""
    x, y, side = shape.box
    if shape.name == "triangle":  # apex, the base's corners and middle, the centroid
        points = [(x + side / 2, y), (x, y + side), (x + side, y + side)]
        points += [(x + side / 2, y + side), (x + side / 2, y + side * 2 / 3)]
    else:  # the middles of the box's sides, its centre
        half = side / 2
        points = [(x + half, y), (x, y + half), (x + side, y + half), (x + half, y + side)]
        points.append((x + half, y + half))
    keypoints = []
    for k, (px, py) in enumerate(points):
        occluded = (annotation_id * len(points) + k) % OCCLUDED_EVERY == 0
        keypoints += [round(px, 2), round(py, 2), 1 if occluded else 2]
    xs, ys = keypoints[0::3], keypoints[1::3]
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
        "area": 1.0,
        "iscrowd": 0,
        "keypoints": keypoints,
        "num_keypoints": len(points),
    }


DATASET_MAKERS = {
    "detect": make_detection_dataset,
    "segment": make_segmentation_dataset,
    "classify": make_classification_dataset,
    "pose": make_pose_dataset,
    "obb": make_obb_dataset,
}
