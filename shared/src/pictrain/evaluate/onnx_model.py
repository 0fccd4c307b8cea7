"""The deployable `model-latest.onnx` (and every other export: OpenVINO, TorchScript, TensorRT)
run as ultralytics runs its weights.

numpy, onnxruntime, OpenCV and Pillow only for ONNX (no torch), so a serving process or a laptop
can use it. Each format's runtime (`pictrain.evaluate.runtimes`) only loads the file and runs the
network; every export has the same raw head (`pictrain.exports.export`), decoded here. What
ultralytics does around the network is done here the same way:

- detect / segment: letterbox (scale to fit, centred, grey 114 padding), BGR -> RGB, /255;
  best class per anchor above `conf`, class-aware NMS (IoU `iou`, at most `max_det` kept, by
  score), boxes scaled back to the image and clipped; for segmentation each mask is its
  coefficients times the prototypes, upsampled to the input size, > 0, cropped to its box,
  then scaled to the image (bilinear, > 0.5), as ultralytics scales masks for its COCO
  scoring; instances whose mask is empty are dropped; the outline is the mask's outer
  contours at the input size, joined into one polygon and scaled to the image;
- RT-DETR (detect, its decoder picks 300 queries, no NMS): the image stretched to the input
  size; queries scoring above `conf`, at most `max_det`, boxes scaled to the image (not clipped);
- classify: shorter side resized to the input size (Pillow bilinear), centre crop, /255; the
  output is already softmax probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pictrain.data.polygons import merge_parts
from pictrain.errors import UserError
from pictrain.evaluate.instance import MAX_DETECTIONS, NMS_IOU, Instance
from pictrain.evaluate.runtimes import Runtime, metadata_value, open_runtime

# Keys pictrain adds to the ONNX metadata (ultralytics writes its own `task`, `imgsz`, `names`,
# and `head`, the output layer's class).
TASK_KEY, LABELMAP_KEY, IMAGE_SIZE_KEY = "task", "labelmap", "image_size"
OPERATING_POINT_KEY = "operating_point"  # the thresholds chosen on val (JSON), when exported
RTDETR_HEAD = "RTDETRDecoder"
DEFAULT_CONFIDENCE = 0.25  # ultralytics' predict default
TOP_CLASSES = 5
_PADDING = 114
_MAX_WH = 7680  # box offset per class in NMS, as ultralytics
_MAX_NMS = 30000  # boxes into NMS at most, best scores first


@dataclass(frozen=True)
class _Letterbox:
    """Where the image sits in the model input: its scaled size and the padding before it."""

    width: int
    height: int
    left: int
    top: int


class OnnxModel:
    """`OnnxModel.load(path).predict(image)`: instances in the image's pixels. The name says
    ONNX because the raw head it decodes is the ONNX graph's; any format's runtime feeds it."""

    def __init__(
        self, runtime: Runtime, task: str, names: list[str], image_size: int, head: str = ""
    ) -> None:
        self.runtime = runtime
        self.task = task
        self.names = names
        self.image_size = image_size
        self.head = head

    @classmethod
    def load(cls, path: Path) -> OnnxModel:
        """Task, labelmap and input size from the file's metadata: pictrain's keys where it
        wrote them (ONNX), else ultralytics' own (`names`, `imgsz`), which every format has.
        KeyError when the file has no task or no class names."""
        runtime = open_runtime(path)
        meta = runtime.metadata
        if LABELMAP_KEY in meta:
            labelmap = metadata_value(meta, LABELMAP_KEY)
            names = [labelmap[str(i)] for i in range(len(labelmap))]
        else:  # exported by ultralytics alone: {index: name}
            named = metadata_value(meta, "names")
            names = [named[i] for i in sorted(named, key=int)]
        size = metadata_value(meta, IMAGE_SIZE_KEY) if IMAGE_SIZE_KEY in meta else None
        if size is None:
            size = metadata_value(meta, "imgsz")[-1]
        return cls(runtime, meta[TASK_KEY], names, int(size), meta.get("head", ""))

    def predict(
        self,
        image: Path | np.ndarray,
        conf: float = DEFAULT_CONFIDENCE,
        iou: float = NMS_IOU,
        max_det: int = MAX_DETECTIONS,
    ) -> list[Instance]:
        """`image`: a file, or an (H, W, 3) BGR uint8 array as OpenCV reads it.

        Classification: the best classes (at most 5, probability >= `conf`), best first, each
        with the whole image as its box.
        """
        pixels = read_image(image) if isinstance(image, Path) else image
        if self.task == "classify":
            return self._classify(pixels, conf)
        if self.head == RTDETR_HEAD:
            return self._queries(pixels, conf, max_det)
        tensor, box = _letterbox(pixels, self.image_size)
        outputs = self.runtime.run(tensor)
        return self._instances(outputs, box, pixels.shape[:2], conf, iou, max_det)

    def network_input(self, pixels: np.ndarray) -> np.ndarray:
        """The (1, 3, N, N) tensor `predict` feeds the network for this image: what the
        latency of a format is timed on."""
        if self.task == "classify":
            return _centre_crop(pixels, self.image_size)
        if self.head == RTDETR_HEAD:
            return _tensor(_stretch(pixels, self.image_size))
        return _letterbox(pixels, self.image_size)[0]

    def _queries(self, pixels: np.ndarray, conf: float, max_det: int) -> list[Instance]:
        (output,) = self.runtime.run(_tensor(_stretch(pixels, self.image_size)))
        rows = output[0][output[0][:, 4] > conf][:max_det]  # cx, cy, w, h (0-1), score, class
        height, width = pixels.shape[:2]
        xyxy = _xyxy(rows[:, :4]) * np.array([width, height] * 2, dtype=np.float32)
        boxes = zip(xyxy.tolist(), rows[:, 4], rows[:, 5], strict=True)
        return [
            Instance(int(c), (x1, y1, x2 - x1, y2 - y1), None, float(score))
            for (x1, y1, x2, y2), score, c in boxes
        ]

    def _classify(self, pixels: np.ndarray, conf: float) -> list[Instance]:
        (probabilities,) = self.runtime.run(_centre_crop(pixels, self.image_size))
        height, width = pixels.shape[:2]
        ranked = np.argsort(-probabilities[0], kind="stable")[:TOP_CLASSES]
        runner_up = float(probabilities[0][ranked[1]]) if len(ranked) > 1 else 0.0
        return [
            Instance(
                int(c),
                (0.0, 0.0, float(width), float(height)),
                None,
                float(p),
                runner_up=runner_up if rank == 0 else None,
            )
            for rank, c in enumerate(ranked)
            if (p := probabilities[0][c]) >= conf
        ]

    def _instances(
        self,
        outputs: list[np.ndarray],
        box: _Letterbox,
        shape: tuple[int, int],
        conf: float,
        iou: float,
        max_det: int,
    ) -> list[Instance]:
        classes = len(self.names)
        rows = outputs[0][0].T  # (anchors, 4 + classes [+ mask coefficients])
        scores = rows[:, 4 : 4 + classes]
        best = scores.max(1)
        above = best > conf
        rows, best, cls, scores = rows[above], best[above], scores[above].argmax(1), scores[above]
        if len(rows) > _MAX_NMS:
            first = np.argsort(-best, kind="stable")[:_MAX_NMS]
            rows, best, cls, scores = rows[first], best[first], cls[first], scores[first]
        xyxy = _xyxy(rows[:, :4])
        kept = _nms(xyxy + (cls * _MAX_WH)[:, None].astype(np.float32), best, iou, max_det)
        xyxy, best, cls = xyxy[kept], best[kept], cls[kept]
        second = np.sort(scores[kept], axis=1)[:, -2] if classes > 1 else np.zeros(len(kept))
        polygons: list[list[tuple[float, float]] | None] = [None] * len(kept)
        masks: list[np.ndarray | None] = [None] * len(kept)
        if self.task == "segment":
            small = _masks(rows[kept, 4 + classes :], outputs[1][0], xyxy, self.image_size)
            filled = small.any(axis=(1, 2))
            xyxy, best, cls, small = xyxy[filled], best[filled], cls[filled], small[filled]
            second = second[filled]
            masks = [_to_image(m, box, shape) for m in small]
            polygons = [_outline(m, box, shape) for m in small]
        scaled = _scale_boxes(xyxy, box, shape)
        return [
            Instance(int(c), (x1, y1, x2 - x1, y2 - y1), polygon, float(score), mask, float(s2))
            for (x1, y1, x2, y2), score, c, polygon, mask, s2 in zip(
                scaled.tolist(), best, cls, polygons, masks, second, strict=True
            )
        ]


def open_export(path: Path, what: str) -> OnnxModel:
    """`OnnxModel.load`, with what is wrong with the file (`what` names it) as the user's error:
    a file from a user or the platform is anything until it loads."""
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    try:
        return OnnxModel.load(path)
    except KeyError as exc:
        raise UserError(
            f"{what} {path} has no {exc} in its metadata: not an export of a pictrain or "
            "ultralytics model"
        ) from None
    except Exception as exc:  # each runtime's own kinds: a .pt, a truncated file, another format
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{what} {path} is not a model pictrain can run: {reason}") from None


def read_image(path: Path) -> np.ndarray:
    """BGR pixels as OpenCV reads them; ValueError when it cannot."""
    data = np.fromfile(path, np.uint8)
    if data.size == 0:  # OpenCV asserts on an empty buffer instead of answering None
        raise ValueError(f"{path} is empty (0 bytes)")
    pixels = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError(f"{path} is not an image OpenCV can read")
    return pixels


def _letterbox(pixels: np.ndarray, size: int) -> tuple[np.ndarray, _Letterbox]:
    """The (1, 3, size, size) input, and where the image sits in it (ultralytics' rounding)."""
    height, width = pixels.shape[:2]
    gain = min(size / height, size / width)
    new_w, new_h = max(round(width * gain), 1), max(round(height * gain), 1)
    dw, dh = (size - new_w) / 2, (size - new_h) / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    if (width, height) != (new_w, new_h):
        pixels = cv2.resize(pixels, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    padded = cv2.copyMakeBorder(
        pixels, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(_PADDING,) * 3
    )
    return _tensor(padded), _Letterbox(new_w, new_h, left, top)


def _stretch(pixels: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(pixels, (size, size), interpolation=cv2.INTER_LINEAR)


def _centre_crop(pixels: np.ndarray, size: int) -> np.ndarray:
    """torchvision's Resize(size) (shorter side, Pillow bilinear) then CenterCrop(size)."""
    height, width = pixels.shape[:2]
    short, long = sorted((width, height))
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    image = Image.fromarray(pixels).resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = round((new_w - size) / 2.0), round((new_h - size) / 2.0)
    cropped = np.asarray(image.crop((left, top, left + size, top + size)))
    return _tensor(cropped)


def _tensor(bgr: np.ndarray) -> np.ndarray:
    rgb = np.ascontiguousarray(bgr[:, :, ::-1].transpose(2, 0, 1))
    return (rgb.astype(np.float32) / 255)[None]


def _xyxy(xywh: np.ndarray) -> np.ndarray:
    half = xywh[:, 2:] / 2
    return np.concatenate([xywh[:, :2] - half, xywh[:, :2] + half], axis=1)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float, limit: int) -> np.ndarray:
    """Greedy NMS (torchvision's rule: drop IoU > `iou`), indexes by descending score."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    while order.size and len(kept) < limit:
        first, rest = order[0], order[1:]
        kept.append(int(first))
        width = (np.minimum(x2[first], x2[rest]) - np.maximum(x1[first], x1[rest])).clip(0)
        height = (np.minimum(y2[first], y2[rest]) - np.maximum(y1[first], y1[rest])).clip(0)
        overlap = width * height
        order = rest[overlap / (areas[first] + areas[rest] - overlap) <= iou]
    return np.array(kept, dtype=np.int64)


def _masks(coefficients: np.ndarray, protos: np.ndarray, xyxy: np.ndarray, size: int) -> np.ndarray:
    """(N, size, size) uint8 masks in the model input's pixels, each cropped to its box."""
    channels, height, width = protos.shape
    raw = (coefficients @ protos.reshape(channels, -1)).reshape(-1, height, width)
    columns, rows = np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32)
    masks = np.zeros((len(raw), size, size), dtype=np.uint8)
    for i, (mask, (x1, y1, x2, y2)) in enumerate(zip(raw, xyxy, strict=True)):
        up = _bilinear(mask, size, size) > 0
        inside = ((rows >= y1) & (rows < y2))[:, None] & ((columns >= x1) & (columns < x2))[None]
        masks[i] = up & inside
    return masks


def _content(mask: np.ndarray, box: _Letterbox) -> np.ndarray:
    return mask[box.top : box.top + box.height, box.left : box.left + box.width]


def _to_image(mask: np.ndarray, box: _Letterbox, shape: tuple[int, int]) -> np.ndarray:
    """The mask in the image's pixels: bilinear from the letterboxed content, > 0.5."""
    content = _content(mask, box).astype(np.float32)
    if content.shape != shape:
        content = _bilinear(content, *shape)
    return content > 0.5


def _bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """torch's bilinear resize (align_corners=False) in float32, operation for operation:
    OpenCV's rounds differently where a binary mask lands on 0.5, which the threshold sees."""
    rows0, rows1, up0, up1 = _bilinear_axis(image.shape[0], height)
    cols0, cols1, left0, left1 = _bilinear_axis(image.shape[1], width)
    top = image[rows0][:, cols0] * left0 + image[rows0][:, cols1] * left1
    bottom = image[rows1][:, cols0] * left0 + image[rows1][:, cols1] * left1
    return top * up0[:, None] + bottom * up1[:, None]


def _bilinear_axis(source: int, target: int) -> tuple[np.ndarray, ...]:
    """For each target pixel: the two source pixels and their weights."""
    scale = np.float32(source) / np.float32(target)
    half = np.float32(0.5)
    position = np.maximum(scale * (np.arange(target, dtype=np.float32) + half) - half, 0)
    first = position.astype(np.int64)
    weight = (position - first).astype(np.float32)
    return first, np.minimum(first + 1, source - 1), np.float32(1) - weight, weight


def _outline(
    mask: np.ndarray, box: _Letterbox, shape: tuple[int, int]
) -> list[tuple[float, float]] | None:
    """The mask's outer contours (joined into one polygon), in the image's pixels."""
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    parts = [c.reshape(-1, 2).astype(np.float64) for c in contours if len(c) >= 3]
    if not parts:
        return None
    points = merge_parts(parts)
    gain_x, gain_y = box.width / shape[1], box.height / shape[0]
    points = (points - [box.left, box.top]) / [gain_x, gain_y]
    points = points.clip(0, [shape[1], shape[0]])
    return [(float(x), float(y)) for x, y in points]


def _scale_boxes(xyxy: np.ndarray, box: _Letterbox, shape: tuple[int, int]) -> np.ndarray:
    height, width = shape
    gain = np.array([box.width / width, box.height / height] * 2, dtype=np.float32)
    offset = np.array([box.left, box.top] * 2, dtype=np.float32)
    scaled = (xyxy - offset) / gain
    return scaled.clip(0, np.array([width, height, width, height], dtype=np.float32))
