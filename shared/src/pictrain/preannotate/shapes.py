"""A kept prediction as an annotation: the one mapping from what the model found to what a
reviewer gets. It is a COCO annotation, the entry a local run writes and the one the platform
imports (the SDK's COCO reader turns it into the version's shapes): a box (detection), an
outline (segmentation), the class (classification, the whole image as its box). Coordinates
are integer pixels, as the platform stores them, judged by the rules evaluations are judged by
(`platform.evaluations.sendable`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pictrain.evaluate.instance import Instance
from pictrain.evaluate.predict import to_evaluation
from pictrain.platform.base import Classification, Detection, Polygon
from pictrain.platform.evaluations import Unsendable, sendable, shapes_of


@dataclass(frozen=True)
class Found:
    """One annotation to write: its label name, its score and its COCO geometry (`bbox`,
    `area`, `segmentation` where it has one); ids are the writer's."""

    label: str
    score: float
    geometry: dict[str, Any]

    def coco(self, annotation_id: int, image_id: int, category_id: int) -> dict[str, Any]:
        return {
            "id": annotation_id,
            "image_id": image_id,
            "category_id": category_id,
            "iscrowd": 0,
            "score": round(self.score, 4),
            **self.geometry,
        }


def annotations(
    task: str,
    kept: list[Instance],
    names: list[str],
    size: tuple[int, int],
    unsendable: Unsendable,
) -> list[Found]:
    """`kept` in an image of `size` (width, height); what the platform would refuse is counted
    in `unsendable`, not returned."""
    width, height = size
    if task == "classify":
        return [
            Found(c.label, c.score, {"bbox": [0, 0, width, height], "area": width * height})
            for c in [Classification(names[i.cls], float(i.score)) for i in kept]
        ]
    inside = [replace(i, box=_clipped(i.box, width, height)) for i in kept]
    evaluation = to_evaluation("", inside, names, 0.0, polygons=task == "segment")
    return [_found(shape) for shape in sendable(shapes_of(evaluation), unsendable)]


def _clipped(
    box: tuple[float, float, float, float], width: int, height: int
) -> tuple[float, float, float, float]:
    """Inside the image (RT-DETR's boxes may reach past its edges; the others already are)."""
    x, y, w, h = box
    x1, y1 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x2, y2 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    return x1, y1, x2 - x1, y2 - y1


def _found(shape: Detection | Polygon | Classification) -> Found:
    if isinstance(shape, Detection):
        return Found(
            shape.label,
            shape.score,
            {"bbox": [shape.x, shape.y, shape.w, shape.h], "area": shape.w * shape.h},
        )
    assert isinstance(shape, Polygon)
    xs, ys = [x for x, _ in shape.points], [y for _, y in shape.points]
    box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    return Found(
        shape.label,
        shape.score,
        {
            "bbox": box,
            "area": _area(shape.points),
            "segmentation": [[c for point in shape.points for c in point]],
        },
    )


def _area(points: list[list[int]]) -> float:
    pairs = zip(points, points[1:] + points[:1], strict=True)
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in pairs)) / 2
