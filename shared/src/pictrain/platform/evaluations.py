"""Our evaluations as the SDK's payload: boxes, polygons, classes or keypoints, by the image's
task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from picsellia.types.payload import (
    ClassificationFormat,
    EvaluationFormat,
    KeypointFormat,
    PolygonFormat,
    RectangleFormat,
)

from pictrain.platform.base import Classification, Detection, Evaluation, Keypoints, Polygon

EVALUATIONS_PER_CALL = 100  # the SDK's own limit

Shape = Detection | Polygon | Classification | Keypoints


def shapes_of(evaluation: Evaluation) -> list[Shape]:
    return [
        *evaluation.detections,
        *evaluation.polygons,
        *evaluation.classifications,
        *evaluation.keypoints,
    ]


@dataclass
class Unsendable:
    """Shapes the server may refuse, and that would fail a whole batch of 100: counted, not sent."""

    thin_boxes: int = 0  # a side under 1 px
    flat_polygons: int = 0  # under 3 distinct points, or no area

    def __bool__(self) -> bool:
        return bool(self.thin_boxes or self.flat_polygons)

    def __str__(self) -> str:
        parts = {
            "boxes with a side under 1 px": self.thin_boxes,
            "polygons with under 3 distinct points or no area": self.flat_polygons,
        }
        return ", ".join(f"{count} {what}" for what, count in parts.items() if count)


def sendable(shapes: list[Shape], dropped: Unsendable) -> list[Shape]:
    """The shapes the server accepts, judged on the integers actually sent; counts the rest."""
    kept: list[Shape] = []
    for shape in shapes:
        if isinstance(shape, Detection) and (int(shape.w) < 1 or int(shape.h) < 1):
            dropped.thin_boxes += 1
        elif isinstance(shape, Polygon) and not _has_area(shape.points):
            dropped.flat_polygons += 1
        else:
            kept.append(shape)
    return kept


def _has_area(points: list[list[int]]) -> bool:
    ring = [(int(x), int(y)) for x, y in points]
    if len(set(ring)) < 3:
        return False
    pairs = zip(ring, ring[1:] + ring[:1], strict=True)
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in pairs) != 0


def _rectangle(d: Detection, labels: dict[str, Any]) -> RectangleFormat:
    return RectangleFormat(
        x=int(d.x),
        y=int(d.y),
        w=int(d.w),
        h=int(d.h),
        label_id=labels[d.label].id,
        score=float(d.score),
    )


def _polygon(p: Polygon, labels: dict[str, Any]) -> PolygonFormat:
    return PolygonFormat(
        polygon=[[int(x), int(y)] for x, y in p.points],
        label_id=labels[p.label].id,
        score=float(p.score),
    )


def _classification(c: Classification, labels: dict[str, Any]) -> ClassificationFormat:
    return ClassificationFormat(label_id=labels[c.label].id, score=float(c.score))


def _keypoints(k: Keypoints, labels: dict[str, Any]) -> KeypointFormat:
    return KeypointFormat(
        keypoints=[[int(x), int(y), int(v)] for x, y, v in k.points],
        label_id=labels[k.label].id,
        score=float(k.score),
    )


# `TaskSpec.evaluation_shape` (an `EvaluationFormat` field) -> our shape it carries, and the
# conversion to the SDK's payload type.
FORMATS: dict[str, tuple[type, Callable[[Any, dict[str, Any]], Any]]] = {
    "rectangles": (Detection, _rectangle),
    "polygons": (Polygon, _polygon),
    "classifications": (Classification, _classification),
    "keypoints": (Keypoints, _keypoints),
}


def evaluation_format(field: str, shapes: list[Shape], labels: dict[str, Any]) -> EvaluationFormat:
    """The payload for one asset, its shapes in `field` (the task's `evaluation_shape`);
    `labels` are its dataset version's, by name. The SDK rejects numpy scalars, float
    coordinates and int scores, hence the explicit conversions."""
    kind, convert = FORMATS[field]
    return EvaluationFormat(
        **{field: [convert(shape, labels) for shape in shapes if isinstance(shape, kind)]}
    )
