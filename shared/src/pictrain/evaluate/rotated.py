"""Oriented boxes scored by COCOeval: the exact IoU of two rotated rectangles.

COCO's protocol stays as it is (10 IoU thresholds, 101 recall points, at most 100 detections,
area ranges, crowd regions); only the overlap changes. Boxes are their 4 corners; the
intersection of two is one convex polygon, found by clipping one box by the other's four edges
(Sutherland-Hodgman), for every pair of an image and class at once in numpy. Against a crowd
region the overlap is the intersection over the detection's own area, as COCO measures it.

ultralytics scores oriented boxes with probiou, a Gaussian overlap that is not an IoU: its
numbers are close to these, not equal (the tests measure how close). Its NMS uses probiou too,
so the ONNX decoder does (`probiou`, `corners_of`: its formulas, in numpy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

_CAPACITY = 8  # vertices of the intersection of two quadrilaterals, at most
_PAIRS_PER_STEP = 1 << 15  # bounded memory for any number of pairs
Corners = np.ndarray  # (n, 4, 2)


def areas(corners: Corners) -> np.ndarray:
    """Each quadrilateral's area (shoelace, either orientation)."""
    x, y = corners[..., 0], corners[..., 1]
    return np.abs(np.sum(x * np.roll(y, -1, -1) - np.roll(x, -1, -1) * y, axis=-1)) / 2


def pair_ious(first: Corners, second: Corners, crowd: np.ndarray) -> np.ndarray:
    """The overlap of each `first[i]` (a detection) with `second[i]` (a ground truth)."""
    result = np.zeros(len(first))
    area_a, area_b = areas(first), areas(second)
    # Boxes whose circumscribed circles are apart do not meet: skipped.
    centre_a, centre_b = first.mean(axis=1), second.mean(axis=1)
    radius_a = np.linalg.norm(first - centre_a[:, None], axis=2).max(axis=1)
    radius_b = np.linalg.norm(second - centre_b[:, None], axis=2).max(axis=1)
    near = np.linalg.norm(centre_a - centre_b, axis=1) <= radius_a + radius_b
    near &= (area_a > 0) & (area_b > 0)
    candidates = np.flatnonzero(near)
    for start in range(0, len(candidates), _PAIRS_PER_STEP):
        rows = candidates[start : start + _PAIRS_PER_STEP]
        inter = _intersection_areas(first[rows], second[rows])
        union = np.where(crowd[rows], area_a[rows], area_a[rows] + area_b[rows] - inter)
        result[rows] = inter / union
    return result


def corners_of(xywhr: np.ndarray) -> Corners:
    """The corners of (n, 5) centre x, y, width, height, angle (radians) boxes, in
    ultralytics' order (`xywhr2xyxyxyxy`)."""
    centre, w, h, angle = xywhr[:, None, :2], xywhr[:, 2:3], xywhr[:, 3:4], xywhr[:, 4:5]
    cos, sin = np.cos(angle), np.sin(angle)
    along = np.concatenate([w / 2 * cos, w / 2 * sin], axis=1)[:, None]
    across = np.concatenate([-h / 2 * sin, h / 2 * cos], axis=1)[:, None]
    signs = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]], xywhr.dtype)[None, :, :, None]
    return centre + signs[:, :, 0] * along + signs[:, :, 1] * across


def probiou(first: np.ndarray, second: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """(N, M) probabilistic IoU of (N, 5) and (M, 5) xywhr boxes: one minus the Hellinger
    distance of the Gaussians with the boxes' covariance (Llerena et al., 2021), as
    ultralytics' `batch_probiou` computes it, in the inputs' precision."""
    a1, b1, c1 = _covariance(first)
    a2, b2, c2 = (v[None, :, 0] for v in _covariance(second))
    dx = first[:, None, 0] - second[None, :, 0]
    dy = first[:, None, 1] - second[None, :, 1]
    a, b, c = a1 + a2, b1 + b2, c1 + c2
    determinant = a * b - c**2
    t1 = (a * dy**2 + b * dx**2) / (determinant + eps) * 0.25
    t2 = (c * -dx * dy) / (determinant + eps) * 0.5
    spread = np.sqrt(np.clip(a1 * b1 - c1**2, 0, None) * np.clip(a2 * b2 - c2**2, 0, None))
    t3 = np.log(determinant / (4 * spread + eps) + eps) * 0.5
    distance = np.clip(t1 + t2 + t3, eps, 100.0)
    return 1 - np.sqrt(1.0 - np.exp(-distance) + eps)


def _covariance(xywhr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each box's covariance [[a, c], [c, b]] as (n, 1) columns."""
    a, b = xywhr[:, 2:3] ** 2 / 12, xywhr[:, 3:4] ** 2 / 12
    cos, sin = np.cos(xywhr[:, 4:5]), np.sin(xywhr[:, 4:5])
    return a * cos**2 + b * sin**2, a * sin**2 + b * cos**2, (a - b) * cos * sin


def _intersection_areas(subject: Corners, clip: Corners) -> np.ndarray:
    """Area of each `subject[i]` ∩ `clip[i]`, both convex quadrilaterals."""
    n = len(subject)
    # The clip box counter-clockwise (in x right, y up terms), so "inside" is left of each edge.
    clockwise = _signed_areas(clip) < 0
    clip = np.where(clockwise[:, None, None], clip[:, ::-1], clip)
    polygon = np.zeros((n, _CAPACITY, 2))
    polygon[:, :4] = subject
    count = np.full(n, 4)
    slots = np.arange(_CAPACITY)
    rows = np.arange(n)[:, None]
    for k in range(4):
        start, end = clip[:, k][:, None], clip[:, (k + 1) % 4][:, None]
        edge = end - start
        side = _cross(edge, polygon - start)  # (n, capacity): >= 0 inside
        valid = slots < count[:, None]
        following = np.where(slots + 1 < count[:, None], slots + 1, 0)
        side_next = side[rows, following]
        vertex_next = polygon[rows, following]
        inside, inside_next = side >= 0, side_next >= 0
        crossing = valid & (inside != inside_next)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(crossing, side / (side - side_next), 0.0)
        cut = polygon + t[..., None] * (vertex_next - polygon)
        # Each vertex gives itself if inside, then the cut point if its edge crosses.
        candidates = np.stack([polygon, cut], axis=2).reshape(n, 2 * _CAPACITY, 2)
        keep = np.stack([valid & inside, crossing], axis=2).reshape(n, 2 * _CAPACITY)
        order = np.argsort(~keep, axis=1, kind="stable")[:, :_CAPACITY]
        polygon = np.take_along_axis(candidates, order[..., None], axis=1)
        count = np.minimum(keep.sum(axis=1), _CAPACITY)
    following = np.where(slots + 1 < count[:, None], slots + 1, 0)
    valid = slots < count[:, None]
    twice = _cross(polygon, polygon[rows, following])
    return np.abs(np.where(valid, twice, 0.0).sum(axis=1)) / 2


def _signed_areas(corners: Corners) -> np.ndarray:
    x, y = corners[..., 0], corners[..., 1]
    return np.sum(x * np.roll(y, -1, -1) - np.roll(x, -1, -1) * y, axis=-1) / 2


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


class RotatedOverlaps:
    """The overlaps of every detection with every ground truth of the same image and class,
    computed in one pass before COCOeval asks for them image by image. Annotations hold
    their corners as `poly` (x1, y1, ... x4, y4) and an `id`, unique among the ground truths
    and among the detections.

    Each detection's overlaps lie side by side, one per ground truth of its image and class
    in their order: `_start` is where a detection's begin, `_column` a ground truth's place.
    """

    def __init__(self, truths: list[dict[str, Any]], detections: list[dict[str, Any]]) -> None:
        groups: dict[tuple[int, int], int] = {}  # (image id, category id) -> group
        gt_group = np.array(
            [groups.setdefault((a["image_id"], a["category_id"]), len(groups)) for a in truths],
            np.int64,
        )
        by_group = np.argsort(gt_group, kind="stable")
        sizes = np.bincount(gt_group, minlength=len(groups))
        group_starts = np.cumsum(sizes) - sizes
        column = np.empty(len(truths), np.int64)
        column[by_group] = np.arange(len(truths)) - group_starts[gt_group[by_group]]
        dt_group = np.array(
            [groups.get((a["image_id"], a["category_id"]), -1) for a in detections], np.int64
        )
        known = dt_group >= 0
        pairs = np.where(known, sizes[np.where(known, dt_group, 0)] if len(sizes) else 0, 0)
        self._start = np.cumsum(pairs) - pairs
        self._row = {a["id"]: i for i, a in enumerate(detections)}
        self._column = {a["id"]: j for a, j in zip(truths, column.tolist(), strict=True)}
        dt_index = np.repeat(np.arange(len(detections)), pairs)
        within = np.arange(len(dt_index)) - np.repeat(self._start, pairs)
        gt_index = by_group[np.repeat(group_starts[np.where(known, dt_group, 0)], pairs) + within]
        dt_corners, gt_corners = _corners(detections), _corners(truths)
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in truths], bool)
        self._overlaps = np.zeros(len(dt_index))
        for first in range(0, len(dt_index), _PAIRS_PER_STEP):
            d = dt_index[first : first + _PAIRS_PER_STEP]
            g = gt_index[first : first + _PAIRS_PER_STEP]
            self._overlaps[first : first + len(d)] = pair_ious(
                dt_corners[d], gt_corners[g], crowd[g]
            )

    def matrix(self, detections: list[dict[str, Any]], truths: list[dict[str, Any]]) -> np.ndarray:
        """(len(detections), len(truths)) overlaps, in the order given: detections and ground
        truths of one image and class."""
        starts = self._start[[self._row[d["id"]] for d in detections]]
        columns = np.array([self._column[g["id"]] for g in truths], np.int64)
        return self._overlaps[starts[:, None] + columns[None, :]]


def _corners(annotations: list[dict[str, Any]]) -> Corners:
    return np.array([a["poly"] for a in annotations], np.float64).reshape(-1, 4, 2)


def _descending_score(detection: dict[str, Any]) -> float:
    return -detection["score"]


# The ground truths and the detections of one image and class, as an engine holds them.
Instances = tuple[list[dict[str, Any]], list[dict[str, Any]]]


def rotated_evaluator(base: type, instances: Callable[[Any, int, int], Instances]) -> type:
    """The COCOeval class `base` (pycocotools' or faster-coco-eval's, created with iouType
    "bbox") scoring oriented boxes; `instances` reads an image and class's annotations from it."""

    class Rotated(base):
        def evaluate(self) -> None:
            self.overlaps = RotatedOverlaps(
                self.cocoGt.dataset["annotations"], self.cocoDt.dataset["annotations"]
            )
            super().evaluate()

        def computeIoU(self, imgId: int, catId: int) -> Any:
            """As COCOeval's own: detections by score (stable), at most the largest maxDets."""
            truths, detections = instances(self, imgId, catId)
            if not truths or not detections:
                return []
            ranked = sorted(detections, key=_descending_score)[: self.params.maxDets[-1]]
            return self.overlaps.matrix(ranked, truths)

    Rotated.__name__ = f"Rotated{base.__name__}"
    return Rotated
