"""Run the trained weights over the test images: COCO results for scoring, evaluations to send."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pycocotools import mask as mask_utils

from pictrain.evaluate.ground_truth import EvalImage
from pictrain.evaluate.instance import (
    MAX_DETECTIONS,
    NMS_IOU,
    SCORING_CONFIDENCE,
    Instance,
)
from pictrain.evaluate.operating_point import Thresholds
from pictrain.platform.base import Detection, Evaluation, Polygon
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

    model = YOLO(str(weights))
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
        boxes = result.boxes
        count = len(boxes)
        polygons = result.masks.xy if result.masks is not None else [None] * count
        masks = _masks(result) if result.masks is not None else [None] * count
        rows = zip(
            boxes.cls.tolist(),
            boxes.xyxy.tolist(),
            boxes.conf.tolist(),
            polygons,
            masks,
            strict=True,
        )
        yield image, [_instance(int(c), xyxy, s, p, m) for c, xyxy, s, p, m in rows]


def _masks(result: Any) -> list[np.ndarray]:
    """Masks in the original image's pixels, scaled as ultralytics' own COCO scoring does."""
    from ultralytics.utils import ops

    scaled = ops.scale_masks(result.masks.data[None].float(), result.orig_shape)[0]
    return list((scaled > 0.5).cpu().numpy())


def _instance(
    cls: int, xyxy: list[float], score: float, polygon: Any, mask: np.ndarray | None
) -> Instance:
    x1, y1, x2, y2 = xyxy
    points = [(float(x), float(y)) for x, y in polygon] if polygon is not None else None
    outline = points if points and len(points) >= 3 else None
    return Instance(cls, (x1, y1, x2 - x1, y2 - y1), outline, score, mask)


def coco_results(
    image: EvalImage,
    instances: list[Instance],
    category_ids: Sequence[int],
    iou_type: Literal["bbox", "segm"],
) -> list[dict[str, Any]]:
    """COCO results format, with the COCO file's image and category ids; masks as RLE, the only
    segmentation pycocotools' loadRes takes."""
    results = []
    for instance in instances:
        result = {
            "image_id": image.id,
            "category_id": category_ids[instance.cls],
            "score": round(instance.score, 5),
        }
        if iou_type == "bbox":
            result["bbox"] = [round(v, 2) for v in instance.box]
        elif instance.mask is not None:
            result["segmentation"] = _encode(instance.mask)
        elif instance.polygon:
            result["segmentation"] = _polygon_rle(instance.polygon, image.height, image.width)
        else:
            continue
        results.append(result)
    return results


def _encode(mask: np.ndarray) -> dict[str, Any]:
    return _json(mask_utils.encode(np.asfortranarray(mask[:, :, None], dtype=np.uint8))[0])


def _polygon_rle(polygon: list[tuple[float, float]], height: int, width: int) -> dict[str, Any]:
    flat = [c for point in polygon for c in point]
    return _json(mask_utils.merge(mask_utils.frPyObjects([flat], height, width)))


def _json(rle: dict[str, Any]) -> dict[str, Any]:
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def to_evaluation(
    file_name: str,
    instances: list[Instance],
    names: list[str],
    thresholds: Thresholds,
    polygons: bool,
) -> Evaluation:
    """What the platform shows: shapes at the operating point (each class's threshold),
    integer pixels and float scores."""
    confident = [i for i in instances if i.score >= thresholds.of(i.cls)]
    if polygons:
        return Evaluation(
            file_name=file_name,
            polygons=[
                Polygon([[round(x), round(y)] for x, y in i.polygon], names[i.cls], float(i.score))
                for i in confident
                if i.polygon
            ],
        )
    return Evaluation(
        file_name=file_name,
        detections=[
            Detection(*(round(v) for v in i.box), names[i.cls], float(i.score)) for i in confident
        ],
    )
