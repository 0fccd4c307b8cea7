"""A stand-in for Picsellia's serving: run a deployment's `model-latest` ONNX on one image.

Assumed, not read: the SDK returns the serving's JSON as is (`deployment.predict`), so its
shape is unknown; the emulator answers in the monitoring format the SDK defines
(`types/schemas_prediction.py`): `detection_classes` (label index), `detection_scores`,
`detection_boxes` as `[top, left, bottom, right]` pixels (Picsellia's monitoring docs).
Pre-processing is a plain resize to the static input (no letterbox), post-processing the best
class per anchor above the deployment's threshold and class-wise NMS at IoU 0.7. Detection
(YOLO raw head or RT-DETR queries) and classification; segmentation is not emulated.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

NMS_IOU = 0.7
MAX_DETECTIONS = 100
MAX_CANDIDATES = 300  # best scores into NMS at most: the loop is quadratic


class NotServable(Exception):
    """The model or the image cannot be served; the message says why."""


def predict(
    model_bytes: bytes, image_bytes: bytes, kind: str, n_labels: int, threshold: float
) -> dict[str, Any]:
    import onnxruntime
    from PIL import Image, UnidentifiedImageError

    try:
        session = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors
        raise NotServable(f"model-latest does not load in onnxruntime: {e}") from e
    try:
        image = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise NotServable(f"not an image: {e}") from e
    model_input = session.get_inputs()[0]
    height, width = model_input.shape[2], model_input.shape[3]
    if not isinstance(height, int) or not isinstance(width, int):
        raise NotServable("model-latest must have a static input size")
    resized = np.asarray(image.resize((width, height)), dtype=np.float32) / 255.0
    tensor = resized.transpose(2, 0, 1)[None]
    output = session.run(None, {model_input.name: tensor})[0]
    if kind == "CLASSIFICATION":
        best = int(np.argmax(output[0]))
        return {"detection_classes": [best], "detection_scores": [float(output[0][best])]}
    if kind != "OBJECT_DETECTION":
        raise NotServable(f"serving a {kind} deployment is not emulated")
    boxes, scores, classes = _detections(output[0], n_labels, width, height)
    keep = (scores >= threshold) & (scores > 0)
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    chosen = _nms(boxes, scores, classes)[:MAX_DETECTIONS]
    scale = np.array([image.width / width, image.height / height] * 2)
    pixels = np.round(boxes[chosen] * scale).astype(int)
    return {
        "detection_classes": [int(c) for c in classes[chosen]],
        "detection_scores": [float(s) for s in scores[chosen]],
        "detection_boxes": [[int(y1), int(x1), int(y2), int(x2)] for x1, y1, x2, y2 in pixels],
    }


def _detections(
    raw: np.ndarray, n_labels: int, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x1, y1, x2, y2) in input pixels, best score, its class; from a YOLO head
    (4 + classes, anchors) or RT-DETR queries (queries, 4 + classes, normalised)."""
    if raw.shape[0] == 4 + n_labels:
        rows, size = raw.T, np.array([1.0, 1.0, 1.0, 1.0])
    elif raw.shape[1] == 4 + n_labels:
        rows, size = raw, np.array([width, height, width, height], dtype=np.float32)
    else:
        raise NotServable(f"output {raw.shape} does not fit a head with {n_labels} labels")
    cx, cy, w, h = (rows[:, :4] * size).T
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    class_scores = rows[:, 4:]
    return xyxy, class_scores.max(axis=1), class_scores.argmax(axis=1)


def _nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> list[int]:
    order = list(np.argsort(-scores)[:MAX_CANDIDATES])
    kept: list[int] = []
    while order:
        best = order.pop(0)
        kept.append(int(best))
        order = [
            k
            for k in order
            if classes[k] != classes[best] or _iou(boxes[best], boxes[k]) <= NMS_IOU
        ]
    return kept


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
