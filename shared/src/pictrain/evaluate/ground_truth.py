"""The test split's ground truth, from the user's own COCO file, scored as COCO scores it.

Every image the converter wrote is a test image, under the file's image id; every category keeps
the file's id, so `predictions.json` can be scored against the user's `annotations.json`.
Annotations keep what COCO keeps:

- `bbox` as given (not clipped: the converter clips for training only), `iscrowd` regions as
  crowd regions (COCOeval ignores detections inside them, never counts them as misses);
- `area` as given: COCO's small / medium / large ranges read it; where the file has none, the
  object's mask area (all its parts, holes out) for segmentation, else the box's w x h;
- `segmentation` as the object's mask: the union of its polygon parts, or its RLE mask (which
  must have the image's size), as one compressed RLE.

Oriented boxes (obb) are the boxes the converter writes (`pictrain.data.obb`: the
minimum-area rectangle of the object's outline, clipped to the image, or its box at angle 0),
as corners (`poly`), with the box's own area: the model is scored against what it learnt from.

What cannot be scored is left out and counted: annotations of a category the file does not
list or the labelmap lacks, boxes that are not four finite numbers with w, h >= 0 (bbox),
objects without a polygon part of 3 points or a valid mask (segm), and objects the converter
finds no oriented box for (obb).

Pose: the objects are the converter's (`pictrain.data.keypoints.batch_poses`), so Picsellia's
KEYPOINT export is scored with the boxes and areas trained on, not its hull boxes and its area
1.0; `keypoints` with unlabelled points as 0, 0, 0 and `num_keypoints` the labelled ones (COCO
ignores an object without any, and crowds); objects dropped there are left out and counted.

Images the converter dropped (missing, corrupt, unsafe names) have no prediction and are not
scored. Coordinates need no change: the converter writes images in the frame the annotations
are drawn in (EXIF applied).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from pictrain.config import IouType
from pictrain.data.coco import CocoAnnotation, CocoIndex
from pictrain.data.keypoints import PoseLayout, batch_poses
from pictrain.data.labels import class_index
from pictrain.data.obb import object_rectangles
from pictrain.data.rle import MaskError, decode_rle
from pictrain.data.summary import ConversionSummary
from pictrain.evaluate.rotated import areas


@dataclass(frozen=True)
class EvalImage:
    """A converted test image, under its id in the user's COCO file."""

    id: int
    path: Path
    width: int
    height: int


@dataclass
class GroundTruth:
    """COCO datasets (one per IoU type) and what predictions need to join them."""

    images: list[EvalImage]
    category_ids: list[int]  # class index -> the COCO file's category id
    datasets: dict[str, dict[str, Any]]  # iou type -> COCO dataset dict
    left_out: Counter[str] = field(default_factory=Counter)  # why annotations were not scored


def build_ground_truth(
    index: CocoIndex,
    written: dict[int, str],
    images_dir: Path,
    names: list[str],
    iou_types: tuple[IouType, ...],
    keypoints: PoseLayout | None = None,
) -> GroundTruth:
    """`written`: image id -> converted file name in `images_dir` (the converter's summary);
    `keypoints`: the dataset's point layout, for pose."""
    category_ids, remap = _category_ids(index.categories, names)
    images = [_test_image(image_id, images_dir / name) for image_id, name in written.items()]
    left_out: Counter[str] = Counter()
    annotations: dict[str, list[dict[str, Any]]] = {t: [] for t in iou_types}
    scored: list[tuple[EvalImage, int, CocoAnnotation]] = []

    def add(iou_type: str, entry: dict[str, Any]) -> None:
        entry["id"] = len(annotations[iou_type]) + 1
        annotations[iou_type].append(entry)

    for image in images:
        if keypoints is not None:
            for iou_type, entry in _pose_entries(
                index, image, names, category_ids, keypoints, left_out
            ):
                if iou_type in annotations:  # the operating point asks for the boxes only
                    add(iou_type, entry)
            continue
        for annotation in index.annotations_of(image.id):
            category_id = remap.get(annotation.category_id)
            if category_id is None:
                left_out["category not in the labelmap"] += 1
                continue
            scored.append((image, category_id, annotation))
            for iou_type in iou_types:
                if iou_type == "obb":  # all at once, below
                    continue
                entry = _annotation(annotation, image, category_id, iou_type)
                if entry is None:
                    left_out[f"no usable {'box' if iou_type == 'bbox' else 'mask'}"] += 1
                    continue
                add(iou_type, entry)
    if "obb" in iou_types:
        annotations["obb"] = _oriented(scored, left_out)
    common = {
        "images": [
            {"id": i.id, "file_name": i.path.name, "width": i.width, "height": i.height}
            for i in images
        ],
        "categories": [
            {"id": category_id, "name": name}
            for category_id, name in zip(category_ids, names, strict=True)
        ],
    }
    datasets = {t: {**common, "annotations": annotations[t]} for t in iou_types}
    return GroundTruth(images, category_ids, datasets, left_out)


def _pose_entries(
    index: CocoIndex,
    image: EvalImage,
    names: list[str],
    category_ids: list[int],
    layout: PoseLayout,
    left_out: Counter[str],
) -> Iterator[tuple[str, dict[str, Any]]]:
    """An image's bbox and keypoints entries: its objects as the converter makes them
    (`batch_poses`: Picsellia's boxes and areas fixed), crowds as COCO's ignore regions."""
    counts = ConversionSummary(split="test", task="pose")
    classes = class_index(index.categories, names)
    annotations = index.annotations_of(image.id)
    poses = batch_poses([(annotations, image.width, image.height)], classes, layout, counts)
    unusable = counts.keypoints_malformed + counts.keypoints_bad_visibility
    left_out += Counter(  # += keeps the kinds that happened only
        {
            "category not in the labelmap": counts.annotations_unknown_category,
            "no usable keypoints": unusable + counts.poses_without_points,
        }
    )
    objects = [
        (cls, box, points, area, False)
        for cls, box, points, area in zip(
            poses.cls.tolist(),
            poses.boxes.tolist(),
            poses.keypoints,
            poses.area.tolist(),
            strict=True,
        )
    ]
    for annotation in annotations:
        cls = classes.get(annotation.category_id)
        if annotation.iscrowd and cls is not None:
            unlabelled = np.zeros((layout.size, 3))
            objects.append((cls, list(annotation.bbox), unlabelled, annotation.area, True))
    for cls, box, points, area, crowd in objects:
        if not (all(math.isfinite(v) for v in box) and box[2] >= 0 and box[3] >= 0):
            left_out["no usable box"] += 1
            continue
        entry = {
            "image_id": image.id,
            "category_id": category_ids[cls],
            "iscrowd": int(crowd),
            "area": area if math.isfinite(area) else box[2] * box[3],
            "bbox": box,
        }
        yield "bbox", entry
        labelled = int(np.count_nonzero(points[:, 2] > 0))
        yield (
            "keypoints",
            {**entry, "keypoints": points.ravel().tolist(), "num_keypoints": labelled},
        )


def _category_ids(categories: dict[int, str], names: list[str]) -> tuple[list[int], dict[int, int]]:
    """The file's id of each labelmap name (its smallest, when a name has several ids; a fresh
    id above the file's, when the file does not list it), and file id -> that id."""
    first: dict[str, int] = {}
    for category_id in sorted(categories):
        first.setdefault(categories[category_id], category_id)
    fresh = max(categories, default=0)
    category_ids = []
    for name in names:
        if name not in first:
            fresh += 1
            first[name] = fresh
        category_ids.append(first[name])
    wanted = set(names)
    remap = {cid: first[name] for cid, name in categories.items() if name in wanted}
    return category_ids, remap


def _test_image(image_id: int, path: Path) -> EvalImage:
    with Image.open(path) as image:
        width, height = image.size
    return EvalImage(image_id, path, width, height)


def _annotation(
    annotation: CocoAnnotation, image: EvalImage, category_id: int, iou_type: IouType
) -> dict[str, Any] | None:
    box = annotation.bbox
    has_box = all(math.isfinite(v) for v in box) and box[2] >= 0 and box[3] >= 0
    rle = _mask(annotation.segmentation, image) if annotation.segmentation is not None else None
    if iou_type == "bbox" and not has_box:
        return None
    if iou_type == "segm" and rle is None:
        return None
    area = annotation.area
    if math.isnan(area):
        area = float(mask_utils.area(rle)) if rle is not None else box[2] * box[3]
    entry: dict[str, Any] = {
        "image_id": image.id,
        "category_id": category_id,
        "iscrowd": int(annotation.iscrowd),
        "area": area,
    }
    if has_box:
        entry["bbox"] = list(box)
    if iou_type == "segm":
        entry["segmentation"] = _json_rle(rle)
    return entry


def _oriented(
    scored: list[tuple[EvalImage, int, CocoAnnotation]], left_out: Counter[str]
) -> list[dict[str, Any]]:
    """Each object's oriented box, by the converter's own rules (`pictrain.data.obb`): the box
    the model learnt from; crowd regions keep theirs as crowd regions. `area` is the box's."""
    frames = np.array([(i.width, i.height) for i, _, _ in scored], np.float64).reshape(-1, 2)
    corners, kept = object_rectangles(
        [a for _, _, a in scored],
        frames,
        [i.path.name for i, _, _ in scored],
        ConversionSummary("test"),
    )
    if not kept.all():
        left_out["no usable oriented box"] += int(np.count_nonzero(~kept))
    kept_objects = [object for object, keep in zip(scored, kept.tolist(), strict=True) if keep]
    return [
        {
            "id": n,
            "image_id": image.id,
            "category_id": category_id,
            "iscrowd": int(annotation.iscrowd),
            "area": float(area),
            "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
            "poly": box.ravel().tolist(),
        }
        for n, ((image, category_id, annotation), box, area, (x1, y1), (x2, y2)) in enumerate(
            zip(kept_objects, corners, areas(corners), corners.min(1), corners.max(1), strict=True),
            start=1,
        )
    ]


def _mask(segmentation: Any, image: EvalImage) -> dict[str, Any] | None:
    """The object's mask as one compressed RLE (the union of its polygon parts), or None."""
    height, width = image.height, image.width
    if isinstance(segmentation, dict):
        try:
            mask = decode_rle(segmentation, height, width)
        except MaskError:
            return None
        return mask_utils.encode(mask[:, :, None].copy(order="F"))[0]
    if not isinstance(segmentation, list):
        return None
    # pycocotools takes a part of 4 numbers for a box, and fails on odd or non-numeric ones.
    parts = [[float(v) for v in part] for part in segmentation if _is_polygon(part)]
    if not parts:
        return None
    return mask_utils.merge(mask_utils.frPyObjects(parts, height, width))


def _is_polygon(part: Any) -> bool:
    return (
        isinstance(part, list)
        and len(part) >= 6
        and len(part) % 2 == 0
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in part
        )
    )


def _json_rle(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }
