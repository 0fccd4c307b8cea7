"""One predicted object, whichever model made it (ultralytics weights or the ONNX export)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Point = tuple[float, float]

# COCO's own protocol scores up to 100 detections per image down to a very low confidence;
# a higher threshold would understate recall and mAP.
SCORING_CONFIDENCE = 0.001
MAX_DETECTIONS = 100
NMS_IOU = 0.7  # ultralytics' predict default
# A predicted keypoint counts as visible (sent, drawn) from this confidence: even odds.
KEYPOINT_VISIBLE = 0.5


@dataclass(frozen=True)
class Instance:
    """In the original image's pixels. Classification: the whole image is the box."""

    cls: int
    box: tuple[float, float, float, float]  # x, y, w, h
    polygon: list[Point] | None = None  # segmentation: the outline
    score: float = 1.0
    mask: np.ndarray | None = None  # segmentation: bool (height, width), what is scored
    keypoints: np.ndarray | None = None  # pose: (K, 3) x, y, confidence
    corners: np.ndarray | None = None  # obb: (4, 2), what is scored (may reach out of the image)
    # The second-best class's score where the head gives every class's (what "a close second
    # class" reads, docs/preannotate.md); None where it does not (RT-DETR's queries).
    runner_up: float | None = None


def oriented(cls: int, corners: np.ndarray, score: float, shape: tuple[int, int]) -> Instance:
    """An oriented box, from its 4 corners in an image of `shape` (height, width): its box is
    their upright box, its polygon (what the platform shows) the corners moved into the image."""
    height, width = shape
    corners = np.asarray(corners, np.float64).reshape(4, 2)
    (x1, y1), (x2, y2) = corners.min(axis=0), corners.max(axis=0)
    inside = corners.clip(0, [width, height])
    polygon = [(float(x), float(y)) for x, y in inside]
    box = (float(x1), float(y1), float(x2 - x1), float(y2 - y1))
    return Instance(cls, box, polygon, score, corners=corners)
