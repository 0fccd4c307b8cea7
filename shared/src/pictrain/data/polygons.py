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

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pictrain.data.rle import MaskError, decode_rle

CLIP_TOLERANCE = 1e-3  # pixels; float noise at the border is clamped without being reported
MIN_AREA = 1e-9  # square pixels: below this, a part is a line or a point
_DISTANCE_BLOCK = 1 << 20  # distance-matrix entries per step: bounded memory for long contours


@dataclass(frozen=True, slots=True)
class Shape:
    """The object's polygon (None: nothing usable) and what was done to get it."""

    polygon: np.ndarray | None  # (N, 2) float pixels
    parts: int = 0  # usable parts joined into the polygon
    parts_dropped: int = 0
    holes_filled: int = 0
    clipped: bool = False
    problem: str = ""  # why there is no polygon, when the segmentation itself is unusable


def object_shape(segmentation: Any, width: int, height: int) -> Shape:
    """Apply the module's rules to one annotation's `segmentation` on a width x height image."""
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
    for raw in raw_parts:
        if raw is None:
            dropped += 1
            continue
        inside = np.clip(raw, 0.0, [float(width), float(height)])
        part = _without_repeats(inside)
        if len(part) < 3 or _area(part) < MIN_AREA:
            dropped += 1
            continue
        clipped = clipped or bool(np.any(np.abs(inside - raw) > CLIP_TOLERANCE))
        parts.append(part)
    polygon = merge_parts(parts) if parts else None
    return Shape(polygon, len(parts), dropped, holes, clipped)


def merge_parts(parts: list[np.ndarray]) -> np.ndarray:
    """Join the parts in order: each is spliced into the polygon so far at their closest pair."""
    merged = parts[0]
    for part in parts[1:]:
        i, j = _closest_pair(merged, part)
        loop = np.roll(part, -j, axis=0)
        merged = np.concatenate([merged[: i + 1], loop, loop[:1], merged[i:]])
    return merged


def _polygon_part(raw: Any) -> np.ndarray | None:
    """(N, 2) points of a flat coordinate list; None if it is not one."""
    if not isinstance(raw, list) or len(raw) % 2:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw):
        return None
    points = np.asarray(raw, dtype=np.float64).reshape(-1, 2)
    return points if np.isfinite(points).all() else None


def _mask_parts(mask: np.ndarray) -> tuple[list[np.ndarray], int]:
    """Outer contours of the mask, and how many holes they enclose."""
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return [], 0
    is_hole = hierarchy[0][:, 3] >= 0  # two levels: outer contours, and holes with a parent
    outer = [
        c.reshape(-1, 2).astype(np.float64)
        for c, hole in zip(contours, is_hole, strict=True)
        if not hole
    ]
    return outer, int(is_hole.sum())


def _without_repeats(points: np.ndarray) -> np.ndarray:
    """Drop each point equal to the one before it, and a last point equal to the first."""
    keep = np.ones(len(points), dtype=bool)
    keep[1:] = np.any(points[1:] != points[:-1], axis=1)
    kept = points[keep]
    return kept[:-1] if len(kept) > 1 and (kept[-1] == kept[0]).all() else kept


def _area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))


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
