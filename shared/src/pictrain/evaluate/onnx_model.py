"""The deployable `model-latest.onnx` (and every other export: OpenVINO, TorchScript, TensorRT)
run as ultralytics runs its weights.

numpy, onnxruntime, OpenCV and Pillow only for ONNX (no torch), so a serving process or a laptop
can use it. Each format's runtime (`pictrain.evaluate.runtimes`) only loads the file and runs the
network; every export of a run has the same head (`pictrain.exports.export`), decoded here. The
ONNX metadata key `outputs` says what its rows are (files without it are recognised by their
shape): `raw`, one per anchor (4 box + class scores [+ mask coefficients]) with NMS to run;
`end2end`, the NMS-free head of YOLO26 (and YOLOv10), the detections, best first (x1, y1, x2,
y2, score, class [+ mask coefficients]); `queries`, RT-DETR's. What ultralytics does around the
network is done here the same way:

- detect / segment: letterbox (scale to fit, centred, grey 114 padding), BGR -> RGB, /255;
  raw: best class per anchor above `conf`, class-aware NMS (IoU `iou`, at most `max_det` kept,
  by score); end2end: the rows above `conf`, at most `max_det`; boxes scaled back to the image
  and clipped; for segmentation each mask is its
  coefficients times the prototypes, upsampled to the input size, > 0, cropped to its box,
  then scaled to the image (bilinear, > 0.5), as ultralytics scales masks for its COCO
  scoring; instances whose mask is empty are dropped; the outline is the mask's outer
  contours at the input size, joined into one polygon and scaled to the image;
- pose: as detection, then each kept anchor's keypoints (x, y in input pixels, confidence)
  scaled back to the image as its box is, and clipped to it;
- obb: the same letterbox and candidates; each row is x, y, w, h, the class scores, then the
  angle; class-aware NMS with ultralytics' probiou (its fast NMS: a box goes when any better
  box of its class overlaps it above `iou`, kept or not), centres and sides scaled back to
  the image, corners from them (not clipped);
- RT-DETR (detect, its decoder picks 300 queries, no NMS): the image stretched to the input
  size; queries scoring above `conf`, at most `max_det`, boxes scaled to the image (not clipped);
- classify: shorter side resized to the input size (Pillow bilinear), centre crop, /255; the
  output is already softmax probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from pictrain.config import task_spec
from pictrain.data.polygons import merge_parts
from pictrain.errors import UserError
from pictrain.evaluate.instance import MAX_DETECTIONS, NMS_IOU, Instance, oriented
from pictrain.evaluate.rotated import corners_of, probiou
from pictrain.evaluate.runtimes import Runtime, metadata_value, open_runtime

# Keys pictrain adds to the ONNX metadata (ultralytics writes its own `task`, `imgsz`, `names`,
# and `head`, the output layer's class); pose adds `skeleton`, the point layout as COCO's
# category keys (`keypoints` names, `skeleton` edges numbered from 1).
TASK_KEY, LABELMAP_KEY, IMAGE_SIZE_KEY = "task", "labelmap", "image_size"
SKELETON_KEY = "skeleton"
OPERATING_POINT_KEY = "operating_point"  # the thresholds chosen on val (JSON), when exported
OUTPUTS_KEY, RAW, END2END, QUERIES = "outputs", "raw", "end2end", "queries"
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
    ONNX because the heads it decodes are the ONNX graph's; any format's runtime feeds it."""

    def __init__(
        self,
        runtime: Runtime,
        task: str,
        names: list[str],
        image_size: int,
        outputs: str = RAW,
        skeleton: dict[str, Any] | None = None,
        operating_point: dict[str, Any] | None = None,
    ) -> None:
        self.runtime = runtime
        self.task = task
        self.names = names
        self.image_size = image_size
        self.outputs = outputs  # unused for classification: class probabilities
        self.skeleton = skeleton  # pose: {"keypoints": names, "skeleton": edges from 1}
        self.operating_point = operating_point  # `threshold`, `per_class`; None: not exported

    @classmethod
    def load(cls, path: Path) -> OnnxModel:
        """Task, labelmap, input size and kind of outputs from the file's metadata: pictrain's
        keys where it wrote them (ONNX), else ultralytics' own (`names`, `imgsz`), which every
        format has, and the outputs' shape. KeyError when the file has no task or no class
        names, or its shape says no one kind of outputs."""
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
        task = meta[TASK_KEY]
        outputs = meta.get(OUTPUTS_KEY) or _recognised_outputs(runtime, task, len(names), int(size))
        skeleton = metadata_value(meta, SKELETON_KEY) if SKELETON_KEY in meta else None
        point = metadata_value(meta, OPERATING_POINT_KEY) if OPERATING_POINT_KEY in meta else None
        return cls(runtime, task, names, int(size), outputs, skeleton, point)

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
        if task_spec(self.task).per_image:
            return self._classify(pixels, conf)
        if self.outputs == QUERIES:
            return self._queries(pixels, conf, max_det)
        tensor, box = _letterbox(pixels, self.image_size)
        outputs = self.runtime.run(tensor)
        decode = DECODERS.get(self.task, OnnxModel._instances)
        return decode(self, outputs, box, pixels.shape[:2], conf, iou, max_det)

    def network_input(self, pixels: np.ndarray) -> np.ndarray:
        """The (1, 3, N, N) tensor `predict` feeds the network for this image: what the
        latency of a format is timed on."""
        if self.task == "classify":
            return _centre_crop(pixels, self.image_size)
        if self.outputs == QUERIES:
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
        second = None  # an end-to-end row carries its class's score only
        if self.outputs == END2END:
            xyxy, best, cls, values = _selected(outputs[0][0], conf, max_det)
        else:
            xyxy, best, cls, values, second = _suppressed(
                outputs[0][0], len(self.names), conf, iou, max_det
            )
        extras: list[dict[str, Any]] = [{} for _ in best]
        decode = EXTRAS.get(self.task)
        if decode is not None:
            head = _Head(values, outputs[1:], xyxy, box, shape, self.image_size)
            found, extras = decode(head)
            xyxy, best, cls = xyxy[found], best[found], cls[found]
            second = None if second is None else second[found]
        scaled = _scale_boxes(xyxy, box, shape)
        runners = [None] * len(best) if second is None else second.tolist()
        return [
            Instance(int(c), (x1, y1, x2 - x1, y2 - y1), score=float(score), runner_up=r, **extra)
            for (x1, y1, x2, y2), score, c, r, extra in zip(
                scaled.tolist(), best, cls, runners, extras, strict=True
            )
        ]

    def _oriented(
        self,
        outputs: list[np.ndarray],
        box: _Letterbox,
        shape: tuple[int, int],
        conf: float,
        iou: float,
        max_det: int,
    ) -> list[Instance]:
        runners: list[float | None]
        if self.outputs == END2END:  # x, y, w, h, score, class, angle: no NMS to run
            xywh, best, cls, angle = _selected(outputs[0][0], conf, max_det)
            xywhr = np.concatenate([xywh, angle[:, :1]], axis=1)
            runners = [None] * len(best)
        else:
            classes = len(self.names)
            rows, best, cls = _candidates(outputs[0][0], classes, conf)
            xywhr = np.concatenate([rows[:, :4], rows[:, -1:]], axis=1)  # the angle is last
            offset = xywhr.copy()
            offset[:, :2] += (cls * _MAX_WH)[:, None].astype(np.float32)
            kept = _fast_nms(offset, best, iou)[:max_det]
            xywhr, best, cls = xywhr[kept], best[kept], cls[kept]
            runners = _second_best(rows[kept, 4 : 4 + classes]).tolist()
        gain = np.array([box.width / shape[1], box.height / shape[0]] * 2, dtype=np.float32)
        xywhr[:, :2] -= np.array([box.left, box.top], dtype=np.float32)
        xywhr[:, :4] /= gain
        return [
            replace(oriented(int(c), corners, float(score), shape), runner_up=r)
            for corners, score, c, r in zip(corners_of(xywhr), best, cls, runners, strict=True)
        ]


@dataclass(frozen=True)
class _Head:
    """What a task's decoder reads for the instances NMS kept: the values its head adds to
    each row, the model's other outputs, the boxes in input pixels, where the image sits."""

    values: np.ndarray  # (kept, values per row after the class scores)
    outputs: list[np.ndarray]  # the outputs after output0
    xyxy: np.ndarray  # (kept, 4) in the model input's pixels
    box: _Letterbox
    shape: tuple[int, int]  # the image's height, width
    size: int  # the model input's side


def _segment_extras(head: _Head) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Masks and outlines; instances whose mask is empty are dropped."""
    small = _masks(head.values, head.outputs[0][0], head.xyxy, head.size)
    filled = small.any(axis=(1, 2))
    return filled, [
        {"polygon": _outline(m, head.box, head.shape), "mask": _to_image(m, head.box, head.shape)}
        for m in small[filled]
    ]


def _pose_extras(head: _Head) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Keypoints: x, y in the image's pixels (clipped to it), confidence as the head gives it
    (a sigmoid in the graph)."""
    points = head.values.reshape(len(head.values), head.values.shape[1] // 3, 3)
    points = points.astype(np.float64)
    height, width = head.shape
    box = head.box
    points[..., 0] = ((points[..., 0] - box.left) / (box.width / width)).clip(0, width)
    points[..., 1] = ((points[..., 1] - box.top) / (box.height / height)).clip(0, height)
    return np.ones(len(points), bool), [{"keypoints": p} for p in points]


# Task -> its decoder of what the head adds beyond box and classes: which kept instances stay
# (a mask over them) and the `Instance` fields each gets. Tasks with a box head only: none.
EXTRAS: dict[str, Callable[[_Head], tuple[np.ndarray, list[dict[str, Any]]]]] = {
    "segment": _segment_extras,
    "pose": _pose_extras,
}


# Task -> its decoder of the raw outputs, where NMS itself differs (the rest: `_instances`).
DECODERS: dict[str, Callable[..., list[Instance]]] = {"obb": OnnxModel._oriented}


def _recognised_outputs(runtime: Runtime, task: str, classes: int, size: int) -> str:
    """The kind of a file without `outputs` (exported by ultralytics alone; the formats but
    ONNX): RT-DETR's by its `head`, the YOLO heads' by the shape of the first output of one run
    on a blank image, (1, 4 + classes + extras, anchors) raw, (1, rows, 6 + extras) end2end.
    KeyError(`outputs`) when the shape says neither, or both."""
    if task == "classify":
        return RAW
    if runtime.metadata.get("head") == RTDETR_HEAD:
        return QUERIES
    shapes = [output.shape for output in runtime.run(np.zeros((1, 3, size, size), np.float32))]
    extras = _values_per_row(runtime, task, shapes)
    raw, end2end = shapes[0][1] == 4 + classes + extras, shapes[0][2] == 6 + extras
    if raw == end2end:
        raise KeyError(OUTPUTS_KEY)
    return END2END if end2end else RAW


def _values_per_row(runtime: Runtime, task: str, shapes: list[tuple[int, ...]]) -> int:
    """What a task's head adds to each row beyond box and classes: a mask coefficient per
    prototype (segment), x, y and confidence per keypoint (pose), the angle (obb). KeyError
    for a pose file that says neither its `kpt_shape` nor its `skeleton`."""
    if task == "segment":
        return shapes[1][1]
    if task == "pose":  # ultralytics' (points, 3), else pictrain's skeleton: names per point
        meta = runtime.metadata
        if "kpt_shape" in meta:
            points, values = metadata_value(meta, "kpt_shape")
            return int(points) * int(values)
        return 3 * len(metadata_value(meta, SKELETON_KEY)["keypoints"])
    return 1 if task == "obb" else 0


def _candidates(
    head: np.ndarray, classes: int, conf: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw outputs (4 + classes [+ extras], anchors): the rows whose best class scores above
    `conf` (at most _MAX_NMS, best first), that score, and that class."""
    rows = head.T
    scores = rows[:, 4 : 4 + classes]
    best = scores.max(1)
    rows, best, cls = rows[best > conf], best[best > conf], scores[best > conf].argmax(1)
    if len(rows) > _MAX_NMS:
        first = np.argsort(-best, kind="stable")[:_MAX_NMS]
        rows, best, cls = rows[first], best[first], cls[first]
    return rows, best, cls


def _suppressed(
    head: np.ndarray, classes: int, conf: float, iou: float, max_det: int
) -> tuple[np.ndarray, ...]:
    """Raw outputs (4 + classes [+ extras], anchors): each anchor's best class above `conf`,
    then class-aware NMS. xyxy boxes, scores, classes, extras and second-best class scores,
    best first."""
    rows, best, cls = _candidates(head, classes, conf)
    xyxy = _xyxy(rows[:, :4])
    kept = _nms(xyxy + (cls * _MAX_WH)[:, None].astype(np.float32), best, iou, max_det)
    second = _second_best(rows[kept, 4 : 4 + classes])
    return xyxy[kept], best[kept], cls[kept], rows[kept, 4 + classes :], second


def _second_best(scores: np.ndarray) -> np.ndarray:
    """Each row's second-highest class score (0 with one class): what a close second reads."""
    if scores.shape[1] < 2:
        return np.zeros(len(scores), np.float32)
    return np.partition(scores, -2, axis=1)[:, -2]


def _selected(rows: np.ndarray, conf: float, max_det: int) -> tuple[np.ndarray, ...]:
    """End-to-end rows (x1, y1, x2, y2, score, class [+ extras]), already best first: those
    above `conf`, at most `max_det`, as ultralytics filters them."""
    rows = rows[rows[:, 4] > conf][:max_det]
    return rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64), rows[:, 6:]


def open_export(path: Path, what: str) -> OnnxModel:
    """`OnnxModel.load`, with what is wrong with the file (`what` names it) as the user's error:
    a file from a user or the platform is anything until it loads."""
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    try:
        return OnnxModel.load(path)
    except UserError:  # a TorchScript program that would call more than an export's operators
        raise
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


def _fast_nms(xywhr: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """ultralytics' fast NMS of rotated boxes: indexes by descending score of the boxes that
    no better box overlaps (probiou) above `iou`, whether that box was kept or not."""
    order = np.argsort(-scores, kind="stable")
    overlaps = np.triu(probiou(xywhr[order], xywhr[order]), k=1)
    return order[(overlaps > iou).sum(axis=0) <= 0]


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
