"""Run the trained model over the test images: COCO results for scoring, evaluations to send."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pycocotools import mask as mask_utils

from pictrain.evaluate.ground_truth import EvalImage, Instance
from pictrain.platform.base import Detection, Evaluation, Polygon

# COCO's own protocol scores up to 100 detections per image down to a very low confidence;
# a higher threshold would understate recall and mAP.
SCORING_CONFIDENCE = 0.001
MAX_DETECTIONS = 100


def predict(
    weights: Path, images: list[EvalImage], image_size: int, device: str
) -> Iterator[tuple[EvalImage, list[Instance]]]:
    """Yield each image with its predicted instances (polygons too for segmentation models)."""
    from ultralytics import YOLO

    results = YOLO(str(weights)).predict(
        source=[str(i.path) for i in images],
        imgsz=image_size,
        conf=SCORING_CONFIDENCE,
        max_det=MAX_DETECTIONS,
        device=device or None,
        stream=True,
        verbose=False,
    )
    for image, result in zip(images, results, strict=True):
        boxes = result.boxes
        polygons = result.masks.xy if result.masks is not None else [None] * len(boxes)
        rows = zip(
            boxes.cls.tolist(), boxes.xyxy.tolist(), boxes.conf.tolist(), polygons, strict=True
        )
        yield image, [_instance(int(c), xyxy, s, polygon) for c, xyxy, s, polygon in rows]


def _instance(cls: int, xyxy: list[float], score: float, polygon: Any) -> Instance:
    x1, y1, x2, y2 = xyxy
    points = [(float(x), float(y)) for x, y in polygon] if polygon is not None else None
    return Instance(
        cls, (x1, y1, x2 - x1, y2 - y1), points if points and len(points) >= 3 else None, score
    )


def coco_results(
    image: EvalImage, instances: list[Instance], iou_type: Literal["bbox", "segm"]
) -> list[dict[str, Any]]:
    """COCO results format; masks as RLE, the only segmentation pycocotools' loadRes takes."""
    results = []
    for instance in instances:
        result = {
            "image_id": image.id,
            "category_id": instance.cls + 1,
            "score": round(instance.score, 5),
        }
        if iou_type == "bbox":
            result["bbox"] = [round(v, 2) for v in instance.box]
        elif instance.polygon:
            result["segmentation"] = _rle(instance.polygon, image.height, image.width)
        else:
            continue
        results.append(result)
    return results


def _rle(polygon: list[tuple[float, float]], height: int, width: int) -> dict[str, Any]:
    flat = [c for point in polygon for c in point]
    rle = mask_utils.merge(mask_utils.frPyObjects([flat], height, width))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def to_evaluation(
    file_name: str, instances: list[Instance], names: list[str], min_score: float, polygons: bool
) -> Evaluation:
    """What the platform shows: confident shapes only, integer pixels and float scores."""
    confident = [i for i in instances if i.score >= min_score]
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
