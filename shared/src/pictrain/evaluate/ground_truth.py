"""The test split's ground truth, rebuilt from the converted YOLO labels.

Scoring against what the model was trained on (boxes clipped, bad ones dropped, EXIF applied)
keeps predictions and ground truth in the same pixel frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

Point = tuple[float, float]


@dataclass(frozen=True)
class Instance:
    """One object, in pixels: a box, its polygon for segmentation, and a score (1 for truth)."""

    cls: int
    box: tuple[float, float, float, float]  # x, y, w, h
    polygon: list[Point] | None = None
    score: float = 1.0


@dataclass(frozen=True)
class EvalImage:
    id: int
    path: Path
    width: int
    height: int
    instances: list[Instance]


def read_yolo_split(images_dir: Path, labels_dir: Path) -> list[EvalImage]:
    """Detection lines (`cls cx cy w h`) and segmentation lines (`cls x1 y1 x2 y2 ...`)."""
    images = []
    for index, path in enumerate(sorted(p for p in images_dir.iterdir() if p.is_file())):
        with Image.open(path) as image:
            width, height = image.size
        label_file = labels_dir / f"{path.stem}.txt"
        lines = label_file.read_text().splitlines() if label_file.exists() else []
        instances = [_instance(line.split(), width, height) for line in lines if line.strip()]
        images.append(EvalImage(index + 1, path, width, height, instances))
    return images


def _instance(fields: list[str], width: int, height: int) -> Instance:
    cls, values = int(fields[0]), [float(v) for v in fields[1:]]
    if len(values) == 4:
        cx, cy, w, h = values
        bw, bh = w * width, h * height
        return Instance(cls, (cx * width - bw / 2, cy * height - bh / 2, bw, bh))
    polygon = [(x * width, y * height) for x, y in zip(values[::2], values[1::2], strict=True)]
    return Instance(cls, polygon_box(polygon), polygon)


def polygon_box(polygon: list[Point]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


def polygon_area(polygon: list[Point]) -> float:
    """Shoelace formula."""
    twice = sum(
        x1 * y2 - x2 * y1
        for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1], strict=True)
    )
    return abs(twice) / 2


def coco_ground_truth(images: list[EvalImage], names: list[str]) -> dict[str, Any]:
    """COCO dict with category id = class index + 1 (COCO reserves 0); polygons kept."""
    instances = [(image.id, instance) for image in images for instance in image.instances]
    annotations = []
    for index, (image_id, instance) in enumerate(instances, start=1):
        x, y, w, h = instance.box
        annotation = {
            "id": index,
            "image_id": image_id,
            "category_id": instance.cls + 1,
            "bbox": [x, y, w, h],
            "area": w * h,
            "iscrowd": 0,
        }
        if instance.polygon:
            annotation["segmentation"] = [[c for point in instance.polygon for c in point]]
            annotation["area"] = polygon_area(instance.polygon)
        annotations.append(annotation)
    return {
        "images": [
            {"id": i.id, "file_name": i.path.name, "width": i.width, "height": i.height}
            for i in images
        ],
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(names)],
    }
