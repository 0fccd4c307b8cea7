"""Run the trained model over the test images: COCO results for scoring, evaluations to send."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pictrain.evaluate.ground_truth import TestImage
from pictrain.platform.base import Detection, Evaluation

# COCO's own protocol scores up to 100 detections per image down to a very low confidence;
# a higher threshold would understate recall and mAP.
SCORING_CONFIDENCE = 0.001
MAX_DETECTIONS = 100


def predict(
    weights: Path, images: list[TestImage], image_size: int, device: str
) -> Iterator[tuple[TestImage, list[tuple[int, float, float, float, float, float]]]]:
    """Yield each image with its boxes as (class index, x, y, w, h, score), in pixels."""
    from ultralytics import YOLO

    model = YOLO(str(weights))
    results = model.predict(
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
        rows = zip(boxes.cls.tolist(), boxes.xyxy.tolist(), boxes.conf.tolist(), strict=True)
        yield (
            image,
            [(int(cls), x1, y1, x2 - x1, y2 - y1, score) for cls, (x1, y1, x2, y2), score in rows],
        )


def coco_results(
    image: TestImage, boxes: list[tuple[int, float, float, float, float, float]]
) -> list[dict[str, Any]]:
    return [
        {
            "image_id": image.id,
            "category_id": cls + 1,
            "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
            "score": round(score, 5),
        }
        for cls, x, y, w, h, score in boxes
    ]


def to_evaluation(
    file_name: str,
    boxes: list[tuple[int, float, float, float, float, float]],
    names: list[str],
    min_score: float,
) -> Evaluation:
    """What the platform shows: confident boxes only, integer pixels and float scores."""
    return Evaluation(
        file_name=file_name,
        detections=[
            Detection(round(x), round(y), round(w), round(h), names[cls], float(score))
            for cls, x, y, w, h, score in boxes
            if score >= min_score
        ],
    )
