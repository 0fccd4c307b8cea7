"""A human in Picsellia's annotation tool, for the demo and its test: reviewing the assets a
pre-annotation tagged against the true objects, then moving them into the training version.

Each pre-annotated box matching a true object of the same label at IoU >= 0.5 (greedily, the
best overlaps first) is kept; the others are deleted and the missed objects drawn; the asset's
`pre-annotated` tag is removed (reviewed). Not server behaviour: what a user does in the UI.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.emulator.coco import shapes_from_annotation
from tests.emulator.state import Asset, DatasetVersion, Label, Rectangle, State

KEPT_IOU = 0.5


@dataclass(frozen=True)
class Review:
    assets: int  # pre-annotated assets reviewed
    predicted: int  # pre-annotated boxes
    kept: int  # of them, matching a true object
    truths: int  # true objects on those assets


def review_preannotations(
    state: State, version_id: uuid.UUID, truth: Path, tag: str, into: uuid.UUID
) -> Review:
    version = state.dataset_versions[version_id]
    document: dict[str, Any] = json.loads(truth.read_text())
    names = {c["id"]: c["name"] for c in document["categories"]}
    images = {i["file_name"]: i["id"] for i in document["images"]}
    objects: dict[int, list[dict[str, Any]]] = {}
    for annotation in document["annotations"]:
        objects.setdefault(annotation["image_id"], []).append(annotation)
    tag_ids = {
        t.id for t in state.tags.values() if t.name == tag and t.dataset_version_id == version_id
    }
    target = state.dataset_versions[into]
    assets = predicted = kept = truths = 0
    for asset in version.assets:
        if not tag_ids & set(asset.tag_ids):
            continue
        true = objects.get(images[state.datas[asset.data_id].filename], [])
        boxes = [s for s in asset.shapes if isinstance(s, Rectangle)]
        assets, predicted, truths = assets + 1, predicted + len(boxes), truths + len(true)
        kept += _matched(version, boxes, true, names)
        asset.shapes = _shapes(version, true, names)
        asset.annotation_status = "ACCEPTED"
        asset.tag_ids = [t for t in asset.tag_ids if t not in tag_ids]
        target.assets.append(Asset(asset.data_id, _shapes(target, true, names), annotated=True))
    return Review(assets, predicted, kept, truths)


def _shapes(
    version: DatasetVersion, true: list[dict[str, Any]], names: dict[int, str]
) -> list[Any]:
    return [
        shape
        for annotation in true
        for shape in shapes_from_annotation(
            annotation, version.type, _label(version, names[annotation["category_id"]]).id
        )
    ]


def _label(version: DatasetVersion, name: str) -> Label:
    return next(label for label in version.labels if label.name == name)


def _matched(
    version: DatasetVersion,
    boxes: list[Rectangle],
    true: list[dict[str, Any]],
    names: dict[int, str],
) -> int:
    pairs = sorted(
        (
            (_iou((b.x, b.y, b.w, b.h), t["bbox"]), i, j)
            for i, b in enumerate(boxes)
            for j, t in enumerate(true)
            if version.label(b.label_id).name == names[t["category_id"]]
        ),
        reverse=True,
    )
    used_boxes: set[int] = set()
    used_truths: set[int] = set()
    for iou, i, j in pairs:
        if iou >= KEPT_IOU and i not in used_boxes and j not in used_truths:
            used_boxes.add(i)
            used_truths.add(j)
    return len(used_boxes)


def _iou(a: tuple[float, ...], b: list[float]) -> float:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(width, 0) * max(height, 0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
