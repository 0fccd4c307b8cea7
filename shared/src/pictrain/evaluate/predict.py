"""Run the trained weights over the test images: COCO results for scoring, evaluations to send."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from pictrain import safeload
from pictrain.config import IouType
from pictrain.evaluate.ground_truth import EvalImage
from pictrain.evaluate.instance import (
    KEYPOINT_VISIBLE,
    MAX_DETECTIONS,
    NMS_IOU,
    SCORING_CONFIDENCE,
    Instance,
    oriented,
)
from pictrain.evaluate.operating_point import Thresholds
from pictrain.evaluate.rotated import areas
from pictrain.platform.base import Detection, Evaluation, Keypoints, Polygon
from pictrain.train.models import head_arguments

# Images per inference call. ultralytics reads a list of paths whole into memory and runs it as
# ONE batch (`autocast_list` then `LoadPilAndNumpy`): a test split of thousands of images given
# at once would be one batch of thousands. So the split goes in pieces of this many.
INFERENCE_BATCH = 16


def ultralytics_results(
    weights: Path, paths: Sequence[Path], image_size: int, device: str, **settings: Any
) -> Iterator[Any]:
    """ultralytics' predictions for `paths`, in order, a bounded batch at a time. Every image is
    letterboxed to the square `image_size` (`rect=False`): the input a static export takes, so
    the weights and their deployable file see the same pixels, whatever the batch holds; and
    with the head that is exported (`head_arguments`: YOLO26's NMS-free one)."""
    from ultralytics import YOLO

    model = safeload.model(YOLO, weights)
    for start in range(0, len(paths), INFERENCE_BATCH):
        yield from model.predict(
            source=[str(p) for p in paths[start : start + INFERENCE_BATCH]],
            imgsz=image_size,
            rect=False,
            device=device or None,
            stream=True,
            verbose=False,
            **head_arguments(model),
            **settings,
        )


def predict(
    weights: Path, images: list[EvalImage], image_size: int, device: str
) -> Iterator[tuple[EvalImage, list[Instance]]]:
    """Yield each image with its predicted instances (masks and outlines for segmentation)."""
    results = ultralytics_results(
        weights,
        [i.path for i in images],
        image_size,
        device,
        conf=SCORING_CONFIDENCE,
        iou=NMS_IOU,
        max_det=MAX_DETECTIONS,
    )
    for image, result in zip(images, results, strict=True):
        if result.obb is not None:
            yield image, _oriented(result)
            continue
        boxes = result.boxes
        count = len(boxes)
        polygons = result.masks.xy if result.masks is not None else [None] * count
        masks = _masks(result) if result.masks is not None else [None] * count
        keypoints = (
            list(result.keypoints.data.cpu().numpy().astype(np.float64))
            if result.keypoints is not None
            else [None] * count
        )
        rows = zip(
            boxes.cls.tolist(),
            boxes.xyxy.tolist(),
            boxes.conf.tolist(),
            polygons,
            masks,
            keypoints,
            strict=True,
        )
        yield image, [_instance(int(c), xyxy, s, p, m, k) for c, xyxy, s, p, m, k in rows]


def _oriented(result: Any) -> list[Instance]:
    """Oriented boxes: their corners as ultralytics computes them (`OBB.xyxyxyxy`)."""
    obb = result.obb
    rows = zip(obb.cls.tolist(), obb.xyxyxyxy.cpu().numpy(), obb.conf.tolist(), strict=True)
    return [oriented(int(c), corners, s, result.orig_shape) for c, corners, s in rows]


def _masks(result: Any) -> list[np.ndarray]:
    """Masks in the original image's pixels, scaled as ultralytics' own COCO scoring does."""
    from ultralytics.utils import ops

    scaled = ops.scale_masks(result.masks.data[None].float(), result.orig_shape)[0]
    return list((scaled > 0.5).cpu().numpy())


def _instance(
    cls: int,
    xyxy: list[float],
    score: float,
    polygon: Any,
    mask: np.ndarray | None,
    keypoints: np.ndarray | None,
) -> Instance:
    x1, y1, x2, y2 = xyxy
    points = [(float(x), float(y)) for x, y in polygon] if polygon is not None else None
    outline = points if points and len(points) >= 3 else None
    return Instance(cls, (x1, y1, x2 - x1, y2 - y1), outline, score, mask, keypoints)


def coco_results(
    image: EvalImage,
    instances: list[Instance],
    category_ids: Sequence[int],
    iou_type: IouType,
) -> list[dict[str, Any]]:
    """COCO results format, with the COCO file's image and category ids; masks as RLE, the only
    segmentation pycocotools' loadRes takes; keypoints as x, y, confidence (COCO's scoring reads
    the positions only); oriented boxes as their corners (`poly`), their area and upright box
    (`pictrain.evaluate.coco_eval`)."""
    results = []
    for instance in instances:
        result = {
            "image_id": image.id,
            "category_id": category_ids[instance.cls],
            "score": round(instance.score, 5),
        }
        if iou_type == "bbox":
            result["bbox"] = [round(v, 2) for v in instance.box]
        elif iou_type == "keypoints":
            if instance.keypoints is None:
                continue
            result["keypoints"] = [round(float(v), 2) for v in instance.keypoints.ravel()]
        elif iou_type == "obb":
            if instance.corners is None:
                continue
            result.update(_oriented_result(instance.corners))
        elif instance.mask is not None:
            result["segmentation"] = _encode(instance.mask)
        elif instance.polygon:
            result["segmentation"] = _polygon_rle(instance.polygon, image.height, image.width)
        else:
            continue
        results.append(result)
    return results


def _oriented_result(corners: np.ndarray) -> dict[str, Any]:
    rounded = corners.round(2)
    (x1, y1), (x2, y2) = rounded.min(axis=0), rounded.max(axis=0)
    return {
        "poly": rounded.ravel().tolist(),
        "area": round(float(areas(rounded[None])[0]), 2),
        "bbox": [float(x1), float(y1), round(float(x2 - x1), 2), round(float(y2 - y1), 2)],
    }


def _encode(mask: np.ndarray) -> dict[str, Any]:
    return _json(mask_utils.encode(np.asfortranarray(mask[:, :, None], dtype=np.uint8))[0])


def _polygon_rle(polygon: list[tuple[float, float]], height: int, width: int) -> dict[str, Any]:
    flat = [c for point in polygon for c in point]
    return _json(mask_utils.merge(mask_utils.frPyObjects([flat], height, width)))


def _json(rle: dict[str, Any]) -> dict[str, Any]:
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _rectangle(instance: Instance, label: str) -> Detection:
    return Detection(*(round(v) for v in instance.box), label, float(instance.score))


def _polygon(instance: Instance, label: str) -> Polygon | None:
    if not instance.polygon:
        return None
    return Polygon(
        [[round(x), round(y)] for x, y in instance.polygon], label, float(instance.score)
    )


def _keypoints(instance: Instance, label: str) -> Keypoints | None:
    if instance.keypoints is None:
        return None
    points = [
        [round(x), round(y), 2 if confidence >= KEYPOINT_VISIBLE else 0]
        for x, y, confidence in instance.keypoints.tolist()
    ]
    return Keypoints(points, label, float(instance.score))


# `TaskSpec.evaluation_shape` -> the `Evaluation` field it fills and how an instance becomes
# one of its shapes (None: this instance has none to send).
SHAPE_OF = {
    "rectangles": ("detections", _rectangle),
    "polygons": ("polygons", _polygon),
    "keypoints": ("keypoints", _keypoints),
}


def to_evaluation(
    file_name: str,
    instances: list[Instance],
    names: list[str],
    thresholds: Thresholds,
    shape: str,
) -> Evaluation:
    """What the platform shows: shapes at the operating point (each class's threshold),
    integer pixels and float scores."""
    field, make = SHAPE_OF[shape]
    made = (make(i, names[i.cls]) for i in instances if i.score >= thresholds.of(i.cls))
    return Evaluation(file_name=file_name, **{field: [s for s in made if s is not None]})
