"""COCO in (seeding a dataset version) and COCO out (`export_annotation_file`).

The export mirrors the SDK's own `COCOFileBuilder`: category ids are 0-based in the version's
label order, image ids 0-based in asset order, bbox `[x, y, w, h]` in ints, polygons as one flat
ring per annotation, classifications with empty `bbox` and `segmentation`, and, like that builder,
no image for a never-annotated asset. KEYPOINT and MULTI versions: each label's skeleton as its
category's `keypoints` (vertex names) and `skeleton` (edges); keypoints as `[x, y, v] * K`,
`bbox` the hull of the points whose v is not 0 (infinities when there is none, written as
JSON's `Infinity`), `area` 1.0 and `num_keypoints`, as that builder writes them.
"""

from __future__ import annotations

import math
import os
import uuid
from typing import Any

from tests.emulator.state import (
    Asset,
    Classification,
    DatasetVersion,
    Keypoints,
    Polygon,
    Rectangle,
    Shape,
    State,
)

DATASET_TYPES = ("OBJECT_DETECTION", "SEGMENTATION", "CLASSIFICATION", "KEYPOINT", "MULTI")
WITH_SKELETONS = ("KEYPOINT", "MULTI")  # the versions whose export carries the skeletons


def shapes_from_annotation(
    annotation: dict[str, Any], dataset_type: str, label_id: uuid.UUID
) -> list[Shape]:
    """The shapes Picsellia would store for one COCO annotation in a dataset of that type."""
    if dataset_type == "CLASSIFICATION":
        return [Classification(label_id)]
    keypoints = annotation.get("keypoints")
    if dataset_type in WITH_SKELETONS and keypoints:
        triples = [keypoints[k : k + 3] for k in range(0, len(keypoints), 3)]
        return [Keypoints(label_id, [[x, y, int(v)] for x, y, v in triples])]
    if dataset_type == "KEYPOINT":
        return []  # a KEYPOINT version holds keypoints only
    segmentation = annotation.get("segmentation") or []
    if dataset_type == "SEGMENTATION" and segmentation:
        if not isinstance(segmentation, list):
            segmentation = _rle_outlines(segmentation)
        return [
            Polygon(
                label_id, [[round(ring[k]), round(ring[k + 1])] for k in range(0, len(ring), 2)]
            )
            for ring in segmentation
        ]
    bbox = annotation.get("bbox") or []
    if len(bbox) != 4:
        raise ValueError(f"annotation {annotation.get('id')} has no usable bbox: {bbox}")
    x, y, w, h = (round(v) for v in bbox)
    return [Rectangle(label_id, x, y, w, h)]


def _rle_outlines(rle: dict[str, Any]) -> list[list[float]]:
    """Picsellia stores polygons: an imported RLE mask becomes its outer outlines."""
    import cv2
    import numpy as np
    from pycocotools import mask as mask_utils

    height, width = rle["size"]
    if isinstance(rle["counts"], list):
        rle = mask_utils.frPyObjects(rle, height, width)
    mask = np.ascontiguousarray(mask_utils.decode(rle), dtype=np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def _file_name(state: State, asset: Asset, export_key: str) -> str:
    data = state.datas[asset.data_id]
    extension = os.path.splitext(data.filename)[1]
    return {
        "FILENAME": data.filename,
        "OBJECT_NAME": data.object_name,
        "ASSET_ID": f"{asset.id}{extension}",
        "DATA_ID": f"{data.id}{extension}",
    }[export_key]


def _polygon_area(points: list[list[int]]) -> float:
    twice = sum(
        x0 * y1 - x1 * y0
        for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True)
    )
    return abs(twice) / 2


def _annotation(shape: Shape, category_id: int) -> dict[str, Any]:
    base: dict[str, Any] = {"category_id": category_id, "iscrowd": 0, "score": 0.0}
    if isinstance(shape, Rectangle):
        bbox = [shape.x, shape.y, shape.w, shape.h]
        return base | {"bbox": bbox, "segmentation": [], "area": float(shape.w * shape.h)}
    if isinstance(shape, Polygon):
        xs = [p[0] for p in shape.points]
        ys = [p[1] for p in shape.points]
        bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        ring = [c for point in shape.points for c in point]
        return base | {"bbox": bbox, "segmentation": [ring], "area": _polygon_area(shape.points)}
    if isinstance(shape, Keypoints):
        seen = [(x, y) for x, y, v in shape.points if v != 0]
        xs, ys = [x for x, _ in seen], [y for _, y in seen]
        x0, y0 = min(xs, default=math.inf), min(ys, default=math.inf)
        x1, y1 = max(xs, default=-1), max(ys, default=-1)
        return base | {
            "bbox": [x0, y0, x1 - x0, y1 - y0],
            "keypoints": [c for point in shape.points for c in point],
            "num_keypoints": len(seen),
            "area": 1.0,
        }
    return base | {"bbox": [], "segmentation": [], "area": 0.0}


def _category(category_id: int, label: Any, version: DatasetVersion) -> dict[str, Any]:
    category: dict[str, Any] = {"id": category_id, "name": label.name}
    if version.type in WITH_SKELETONS and label.skeleton is not None:
        category["keypoints"] = label.skeleton["vertices"]
        category["skeleton"] = label.skeleton["edges"]
    return category


def export(state: State, version: DatasetVersion, export_key: str, assets: list[Asset]) -> dict:
    """The COCO document of these assets of the version (the route picks them)."""
    categories = {label.id: k for k, label in enumerate(version.labels)}
    assets = [a for a in assets if a.annotated]
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, asset in enumerate(assets):
        data = state.datas[asset.data_id]
        images.append(
            {
                "id": image_id,
                "file_name": _file_name(state, asset, export_key),
                "width": data.width,
                "height": data.height,
            }
        )
        for shape in asset.shapes:
            item = _annotation(shape, categories[shape.label_id])
            annotations.append({"id": len(annotations), "image_id": image_id} | item)
    return {
        "info": {"description": f"{version.dataset_name}/{version.version}"},
        "licenses": [],
        "categories": [_category(k, label, version) for k, label in enumerate(version.labels)],
        "images": images,
        "annotations": annotations,
    }
