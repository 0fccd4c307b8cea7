"""The test split's ground truth as COCO, rebuilt from the converted YOLO labels.

Scoring against what the model was trained on (boxes clipped, bad ones dropped, EXIF applied)
keeps predictions and ground truth in the same pixel frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image


@dataclass(frozen=True)
class TestImage:
    id: int
    path: Path
    width: int
    height: int
    boxes: list[tuple[int, float, float, float, float]]  # class index, x, y, w, h in pixels


def read_yolo_split(images_dir: Path, labels_dir: Path) -> list[TestImage]:
    images = []
    for index, path in enumerate(sorted(p for p in images_dir.iterdir() if p.is_file())):
        with Image.open(path) as image:
            width, height = image.size
        label_file = labels_dir / f"{path.stem}.txt"
        lines = label_file.read_text().splitlines() if label_file.exists() else []
        boxes = []
        for line in lines:
            cls, cx, cy, w, h = line.split()[:5]
            bw, bh = float(w) * width, float(h) * height
            x, y = float(cx) * width - bw / 2, float(cy) * height - bh / 2
            boxes.append((int(cls), x, y, bw, bh))
        images.append(TestImage(index + 1, path, width, height, boxes))
    return images


def coco_ground_truth(images: list[TestImage], names: list[str]) -> dict[str, Any]:
    """COCO dict with category id = class index + 1 (COCO reserves 0)."""
    boxes = [(image.id, box) for image in images for box in image.boxes]
    annotations = [
        {
            "id": index,
            "image_id": image_id,
            "category_id": cls + 1,
            "bbox": [x, y, w, h],
            "area": w * h,
            "iscrowd": 0,
        }
        for index, (image_id, (cls, x, y, w, h)) in enumerate(boxes, start=1)
    ]
    return {
        "images": [
            {"id": i.id, "file_name": i.path.name, "width": i.width, "height": i.height}
            for i in images
        ],
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(names)],
    }
