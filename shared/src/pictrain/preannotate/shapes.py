"""A kept prediction as an annotation: the one mapping from what the model found to what a
reviewer gets. It is a COCO annotation, the entry a local run writes and the one the platform
imports (the SDK's COCO reader turns it into the version's shapes). What it becomes depends on
the task and on the version it goes to (`written_as`): a box, an outline, the class, the
keypoints; an oriented box is its 4 corners as an outline, or its upright box in an
OBJECT_DETECTION version (Picsellia has no rotated rectangle). Coordinates are integer pixels,
as the platform stores them, judged by the rules evaluations are judged by
(`platform.evaluations.sendable`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pictrain.config import task_spec
from pictrain.evaluate.instance import Instance
from pictrain.evaluate.operating_point import Thresholds
from pictrain.evaluate.predict import to_evaluation
from pictrain.platform.base import Detection, Keypoints, Polygon
from pictrain.platform.evaluations import Shape, Unsendable, sendable, shapes_of

CLASSES = "classifications"
BOXES = "rectangles"
BOXES_ONLY = "OBJECT_DETECTION"  # a version of boxes takes any task's as boxes


@dataclass(frozen=True)
class Found:
    """One annotation to write: its label name, its score and its COCO geometry (`bbox`,
    `area`, `segmentation` or `keypoints` where it has them); ids are the writer's."""

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


def written_as(task: str, version_type: str) -> str:
    """The evaluation shape a prediction of `task` is written as in a version of that type."""
    spec = task_spec(task)
    if spec.per_image:
        return CLASSES
    return BOXES if version_type == BOXES_ONLY else spec.evaluation_shape


def annotations(
    form: str,
    kept: list[Instance],
    names: list[str],
    size: tuple[int, int],
    unsendable: Unsendable,
) -> list[Found]:
    """`kept` in an image of `size` (width, height), written as `form`; what the platform
    would refuse is counted in `unsendable`, not returned."""
    width, height = size
    if form == CLASSES:
        whole = {"bbox": [0, 0, width, height], "area": width * height}
        return [Found(names[i.cls], float(i.score), whole) for i in kept]
    found = []
    every = Thresholds.fixed(0.0, names, "kept already")
    for instance in kept:
        inside = replace(instance, box=_clipped(instance.box, width, height))
        evaluation = to_evaluation("", [inside], names, every, form)
        found += [_found(shape, inside) for shape in sendable(shapes_of(evaluation), unsendable)]
    return found


def _clipped(
    box: tuple[float, float, float, float], width: int, height: int
) -> tuple[float, float, float, float]:
    """Inside the image (RT-DETR's boxes and oriented boxes' upright ones may reach past its
    edges; the others already are)."""
    x, y, w, h = box
    x1, y1 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x2, y2 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    return x1, y1, x2 - x1, y2 - y1


def _found(shape: Shape, instance: Instance) -> Found:
    if isinstance(shape, Detection):
        box = [shape.x, shape.y, shape.w, shape.h]
        return Found(shape.label, shape.score, {"bbox": box, "area": shape.w * shape.h})
    if isinstance(shape, Keypoints):
        x, y, w, h = (round(v) for v in instance.box)
        geometry = {
            "bbox": [x, y, w, h],
            "area": w * h,
            "keypoints": [v for point in shape.points for v in point],
            "num_keypoints": sum(1 for point in shape.points if point[2] > 0),
        }
        return Found(shape.label, shape.score, geometry)
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
