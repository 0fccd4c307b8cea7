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


@dataclass(frozen=True)
class Instance:
    """In the original image's pixels. Classification: the whole image is the box."""

    cls: int
    box: tuple[float, float, float, float]  # x, y, w, h
    polygon: list[Point] | None = None  # segmentation: the outline
    score: float = 1.0
    mask: np.ndarray | None = None  # segmentation: bool (height, width), what is scored
    # The second-best class's score where the head gives every class's (what "a close second
    # class" reads, docs/preannotate.md); None where it does not (RT-DETR's queries).
    runner_up: float | None = None
