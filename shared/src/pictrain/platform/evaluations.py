"""Our evaluations as the SDK's payload: boxes, polygons or classes, by the image's task."""

from __future__ import annotations

from typing import Any

from picsellia.types.payload import (
    ClassificationFormat,
    EvaluationFormat,
    PolygonFormat,
    RectangleFormat,
)

from pictrain.platform.base import Classification, Detection, Evaluation, Polygon

EVALUATIONS_PER_CALL = 100  # the SDK's own limit

Shape = Detection | Polygon | Classification


def shapes_of(evaluation: Evaluation) -> list[Shape]:
    return [*evaluation.detections, *evaluation.polygons, *evaluation.classifications]


def evaluation_format(task: str, shapes: list[Shape], labels: dict[str, Any]) -> EvaluationFormat:
    """The payload for one asset; `labels` are its dataset version's, by name. The SDK rejects
    numpy scalars, float coordinates and int scores, hence the explicit conversions."""
    if task == "segment":
        return EvaluationFormat(
            polygons=[
                PolygonFormat(
                    polygon=[[int(x), int(y)] for x, y in p.points],
                    label_id=labels[p.label].id,
                    score=float(p.score),
                )
                for p in shapes
                if isinstance(p, Polygon)
            ]
        )
    if task == "classify":
        return EvaluationFormat(
            classifications=[
                ClassificationFormat(label_id=labels[c.label].id, score=float(c.score))
                for c in shapes
                if isinstance(c, Classification)
            ]
        )
    return EvaluationFormat(
        rectangles=[
            RectangleFormat(
                x=int(d.x),
                y=int(d.y),
                w=int(d.w),
                h=int(d.h),
                label_id=labels[d.label].id,
                score=float(d.score),
            )
            for d in shapes
            if isinstance(d, Detection)
        ]
    )
