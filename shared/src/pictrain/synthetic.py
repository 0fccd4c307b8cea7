"""Synthetic COCO data for the three tasks: coloured shapes a tiny YOLO learns in minutes on
a CPU, one colour per class.

Written in the local folder contract, `out_dir/<split>/images/*.jpg` and
`out_dir/<split>/annotations.json`. Category ids are 3, 7 and 12, not 0..n-1, and each split
gives them to different names, as separate dataset versions on the platform do: code that maps
labels by id instead of by name fails on this data.

- detect:   1 to 4 shapes per image, boxes (and their polygons);
- segment:  the same images; polygons (a circle is a 24-point polygon), and every
            `RLE_EVERY`-th object as a compressed RLE mask (iscrowd 0) to exercise that path;
- classify: one larger shape per image, one annotation per image with its box.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as coco_mask

from pictrain.splitnames import canonical_split

# Large, saturated, one colour per class on muted backgrounds: easy to learn from scratch.
SHAPES = {"circle": (220, 40, 40), "square": (40, 190, 60), "triangle": (40, 90, 230)}
CATEGORY_IDS = (3, 7, 12)
MAX_OBJECTS = 4
SIZE_RANGE = (0.18, 0.42)  # side of a shape, as a fraction of the image side
CLASSIFY_SIZE_RANGE = (0.35, 0.7)  # one shape per image: larger, so 64 px images still work
CIRCLE_VERTICES = 24
RLE_EVERY = 5  # segment: objects whose annotation id is a multiple of this are RLE masks
_PLACEMENT_TRIES = 100

Box = tuple[int, int, int]  # x, y, side
# (annotation id, image id, category id, shape name, box, image side) -> COCO annotation
Annotate = Callable[[int, int, int, str, Box, int], dict[str, Any]]


@dataclass(frozen=True)
class _Task:
    max_objects: int
    size_range: tuple[float, float]
    annotate: Annotate


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
    categories = _categories(position)
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
        for name, box in shapes:
            annotation_id = len(annotations) + 1
            category_id = category_of[name]
            annotations.append(
                task.annotate(annotation_id, image_id, category_id, name, box, image_size)
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


def _categories(position: int) -> list[dict[str, Any]]:
    """Each split rotates the ids over the names, and lists them out of id order."""
    shift = position % len(CATEGORY_IDS)
    ids = CATEGORY_IDS[shift:] + CATEGORY_IDS[:shift]
    categories = [{"id": cid, "name": name} for cid, name in zip(ids, SHAPES, strict=True)]
    return categories[::-1]


def _draw_image(
    rng: np.random.Generator, size: int, task: _Task
) -> tuple[Image.Image, list[tuple[str, Box]]]:
    picture = Image.fromarray(_background(rng, size))
    draw = ImageDraw.Draw(picture)
    shapes: list[tuple[str, Box]] = []
    for _ in range(int(rng.integers(1, task.max_objects + 1))):
        box = _place(rng, size, task.size_range, [placed for _, placed in shapes])
        if box is None:
            continue
        name = list(SHAPES)[int(rng.integers(len(SHAPES)))]
        jitter = rng.integers(-20, 21, size=3)
        color = tuple(int(c) for c in np.clip(np.array(SHAPES[name]) + jitter, 0, 255))
        draw.polygon([tuple(p) for p in _outline(name, box, pixel=True)], fill=color)
        shapes.append((name, box))
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


def _annotation(
    annotation_id: int, image_id: int, category_id: int, name: str, box: Box, image_size: int
) -> dict[str, Any]:
    """Box, and the shape's polygon as its segmentation."""
    x, y, side = box
    outline = _outline(name, box)
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
    annotation_id: int, image_id: int, category_id: int, name: str, box: Box, image_size: int
) -> dict[str, Any]:
    """The polygon annotation, or for every RLE_EVERY-th object the same shape as a mask."""
    annotation = _annotation(annotation_id, image_id, category_id, name, box, image_size)
    if annotation_id % RLE_EVERY == 0:
        parts = coco_mask.frPyObjects(annotation["segmentation"], image_size, image_size)
        rle = coco_mask.merge(parts)
        annotation["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
        annotation["area"] = int(coco_mask.area(rle))
    return annotation


def _classify_annotation(
    annotation_id: int, image_id: int, category_id: int, name: str, box: Box, image_size: int
) -> dict[str, Any]:
    """A classification export: the image's class, with the shape's box."""
    x, y, side = box
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": [x, y, side, side],
        "area": side * side,
        "iscrowd": 0,
    }


DATASET_MAKERS = {
    "detect": make_detection_dataset,
    "segment": make_segmentation_dataset,
    "classify": make_classification_dataset,
}
