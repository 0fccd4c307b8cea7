"""One COCO object's segmentation -> the single polygon a YOLO segmentation label line holds.

Rules, in order:
- polygons: each part is a flat `x y x y ...` list of pixel coordinates;
- RLE masks (compressed or list counts, `size` must be the image's [height, width]): the outer
  contours of the mask (cv2.findContours, in pixel indices: the convention cv2.fillPoly,
  ultralytics' rasteriser, inverts exactly) are the parts; holes cannot be drawn by one
  polygon, so they are filled and counted;
- points are clipped to the image, [0, width] x [0, height]; then a point equal to the one
  before it, and a last point equal to the first (COCO's optional closing point), are removed;
- parts with under 3 points, malformed, or of zero area are dropped and counted;
- the remaining parts are joined into one polygon: each next part is spliced in at the closest
  pair of vertices (first such pair in point order on a tie) by a zero-width bridge, going
  there, around the part, and back: n + m + 2 points for parts of n and m points.
"""

from __future__ import annotations

import itertools
import math
from operator import mul
from typing import Any, NamedTuple

import cv2
import numpy as np

from pictrain.data.rle import MaskError, decode_rle

CLIP_TOLERANCE = 1e-3  # pixels; float noise at the border is clamped without being reported
MIN_AREA = 1e-9  # square pixels: below this, a part is a line or a point
_DISTANCE_BLOCK = 1 << 20  # distance-matrix entries per step: bounded memory for long contours
_INF = math.inf

Point = tuple[float, float]


class Shape(NamedTuple):
    """The object's polygon (None: nothing usable) and what was done to get it."""

    polygon: list[Point] | None  # pixels
    parts: int = 0  # usable parts joined into the polygon
    parts_dropped: int = 0
    holes_filled: int = 0
    clipped: bool = False
    problem: str = ""  # why there is no polygon, when the segmentation itself is unusable


def object_shape(segmentation: Any, width: int, height: int) -> Shape:
    """Apply the module's rules to one annotation's `segmentation` on a width x height image.

    Parts are a few dozen points: plain Python lists beat numpy calls at that size; numpy
    only finds mask contours and the closest points of parts to join.
    """
    holes = 0
    if isinstance(segmentation, dict):
        try:
            mask = decode_rle(segmentation, height, width)
        except MaskError as err:
            return Shape(None, problem=str(err))
        raw_parts, holes = _mask_parts(mask)
    elif isinstance(segmentation, list) and segmentation:
        raw_parts = [_polygon_part(part) for part in segmentation]
    else:
        return Shape(None, problem="no polygon or mask")
    parts, dropped, clipped = [], 0, False
    right, bottom = float(width), float(height)
    for raw in raw_parts:
        if raw is None:
            dropped += 1
            continue
        inside = [(_clip(x, right), _clip(y, bottom)) for x, y in raw]
        part = _without_repeats(inside)
        if len(part) < 3 or _area(part) < MIN_AREA:
            dropped += 1
            continue
        clipped = clipped or any(
            abs(a - x) > CLIP_TOLERANCE or abs(b - y) > CLIP_TOLERANCE
            for (a, b), (x, y) in zip(inside, raw, strict=True)
        )
        parts.append(part)
    polygon = merge_parts(parts) if parts else None
    return Shape(polygon, len(parts), dropped, holes, clipped)


def merge_parts(parts: list[list[Point]]) -> list[Point]:
    """Join the parts in order: each is spliced into the polygon so far at their closest pair."""
    merged = parts[0]
    for part in parts[1:]:
        i, j = _closest_pair(np.array(merged), np.array(part))
        loop = part[j:] + part[:j]
        merged = merged[: i + 1] + loop + loop[:1] + merged[i:]
    return merged


def _polygon_part(raw: Any) -> list[Point] | None:
    """The points of a flat coordinate list; None if it is not one."""
    if not isinstance(raw, list) or len(raw) % 2:
        return None
    for v in raw:
        if (type(v) is not float and type(v) is not int) or not -_INF < v < _INF:
            return None
    try:
        return list(zip(map(float, raw[0::2]), map(float, raw[1::2]), strict=True))
    except OverflowError:  # an integer beyond any float
        return None


def _mask_parts(mask: np.ndarray) -> tuple[list[list[Point]], int]:
    """Outer contours of the mask, and how many holes they enclose."""
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return [], 0
    is_hole = hierarchy[0][:, 3] >= 0  # two levels: outer contours, and holes with a parent
    outer = [
        [(x, y) for x, y in c.reshape(-1, 2).astype(np.float64).tolist()]
        for c, hole in zip(contours, is_hole, strict=True)
        if not hole
    ]
    return outer, int(is_hole.sum())


def _clip(value: float, high: float) -> float:
    """`value` within [0, high]; -0.0 becomes 0.0, as numpy's clip against array bounds does."""
    return 0.0 if value <= 0.0 else high if value > high else value


def _without_repeats(points: list[Point]) -> list[Point]:
    """Drop each point equal to the one before it, and a last point equal to the first."""
    kept = points[:1]
    for previous, point in itertools.pairwise(points):
        if point != previous:
            kept.append(point)
    return kept[:-1] if len(kept) > 1 and kept[-1] == kept[0] else kept


def _area(points: list[Point]) -> float:
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return 0.5 * abs(sum(map(mul, xs, ys[1:] + ys[:1])) - sum(map(mul, xs[1:] + xs[:1], ys)))


def _closest_pair(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """Indexes of the closest points of `a` and `b`, the first such pair in (a, b) order."""
    best, best_i, best_j = np.inf, 0, 0
    rows = max(1, _DISTANCE_BLOCK // len(b))
    for start in range(0, len(a), rows):
        distances = ((a[start : start + rows, None, :] - b[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(int(distances.argmin()), distances.shape)
        if distances[i, j] < best:
            best, best_i, best_j = float(distances[i, j]), start + int(i), int(j)
    return best_i, best_j
