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
from operator import eq, mul
from typing import Any, NamedTuple

import cv2
import numpy as np

from pictrain.data.rle import MaskError, decode_rle
from pictrain.data.summary import ConversionSummary

CLIP_TOLERANCE = 1e-3  # pixels; float noise at the border is clamped without being reported
MIN_AREA = 1e-9  # square pixels: below this, a part is a line or a point
_DISTANCE_BLOCK = 1 << 20  # distance-matrix entries per step: bounded memory for long contours
_INF = math.inf

# A polygon as COCO writes one: x1, y1, x2, y2, ... in pixels.
Flat = list[float]
Points = np.ndarray  # (N, 2) float64: x, y in pixels
_NO_POINTS = np.empty((0, 2))
_NUMBERS = {float, int}  # JSON numbers (bool is not one)


class Shape(NamedTuple):
    """The object's polygon (None: nothing usable) and what was done to get it."""

    polygon: Flat | None
    parts: int = 0  # usable parts joined into the polygon
    parts_dropped: int = 0
    holes_filled: int = 0
    clipped: bool = False
    problem: str = ""  # why there is no polygon, when the segmentation itself is unusable


def object_shape(segmentation: Any, width: int, height: int) -> Shape:
    """Apply the module's rules to one annotation's `segmentation` on a width x height image.

    Parts are a few dozen points: plain lists and builtins that loop in C (min, max, sum,
    map) beat numpy calls at that size; numpy only finds mask contours and the closest points
    of parts to join.
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
    for raw in raw_parts:
        if raw is None:
            dropped += 1
            continue
        inside = _clipped(raw, float(width), float(height))
        part = _without_repeats(inside)
        if len(part) < 6 or _area(part) < MIN_AREA:
            dropped += 1
            continue
        clipped = clipped or (
            inside is not raw
            and any(abs(a - b) > CLIP_TOLERANCE for a, b in zip(inside, raw, strict=True))
        )
        parts.append(part)
    if len(parts) > 1:
        polygon = merge_parts([np.reshape(part, (-1, 2)) for part in parts]).ravel().tolist()
    else:
        polygon = parts[0] if parts else None
    return Shape(polygon, len(parts), dropped, holes, clipped)


def plain_polygons(segmentations: list[Any], frames: np.ndarray) -> tuple[Points, list[bool]]:
    """Which segmentations `object_shape` keeps exactly as written, checked all at once.

    Nearly every object is one polygon inside its image without repeated points, which
    `object_shape` returns unchanged (one part, nothing dropped or clipped). Here the objects
    of many images are checked together, in a few numpy calls over their concatenated points,
    instead of one call per object; `frames` holds each one's image width and height. Returns
    the points of every single-polygon segmentation, in order, and for each segmentation
    whether it is such a plain polygon; the others are for `object_shape`.
    """
    single = [
        type(s) is list
        and len(s) == 1
        and type(s[0]) is list
        and len(s[0]) >= 6
        and not len(s[0]) % 2
        for s in segmentations
    ]
    parts = [s[0] for s, one in zip(segmentations, single, strict=True) if one]
    points = _points(parts)
    if points is None:  # something else than numbers in some part: find which
        single = [
            one and _points([s[0]]) is not None
            for s, one in zip(segmentations, single, strict=True)
        ]
        parts = [s[0] for s, one in zip(segmentations, single, strict=True) if one]
        points = _points(parts)
    if points is None or not len(points):
        return _NO_POINTS, [False] * len(segmentations)
    sizes = np.array([len(part) // 2 for part in parts])
    ends = np.cumsum(sizes)
    starts = ends - sizes
    xs, ys = points[:, 0], points[:, 1]
    bounds = np.repeat(frames[single], sizes, axis=0)
    # Flaws: a point outside (or NaN, or infinite, or -0.0): _clipped would move it; a point
    # equal to the one before it in the same part: _without_repeats would drop it.
    flawed = (np.signbit(points) | ~(points <= bounds)).any(axis=1)
    repeated = np.zeros_like(flawed)
    repeated[1:] = (xs[1:] == xs[:-1]) & (ys[1:] == ys[:-1])
    repeated[starts] = False
    flawed |= repeated
    closed = (xs[ends - 1] == xs[starts]) & (ys[ends - 1] == ys[starts])
    following = np.arange(1, len(xs) + 1)
    following[ends - 1] = starts
    forward, backward = xs * ys[following], xs[following] * ys
    twice_area = np.abs(np.add.reduceat(forward - backward, starts))
    # _area adds up in another order: an area counts only when it clears MIN_AREA by far more
    # than the two sums can differ by rounding (n * 2**-52 of the terms' magnitude, each)
    magnitude = np.add.reduceat(np.abs(forward) + np.abs(backward), starts)
    large = twice_area > 2 * MIN_AREA + 1e-12 * sizes * magnitude
    kept = iter((large & ~closed & ~np.logical_or.reduceat(flawed, starts)).tolist())
    return points, [one and next(kept) for one in single]


class Outlines(NamedTuple):
    """The polygons of the objects that have one, their points concatenated in order."""

    points: Points  # (sum of sizes, 2), pixels
    sizes: np.ndarray  # points of each polygon
    kept: np.ndarray  # bool, per object: whether it has a polygon


def outlines(
    segmentations: list[Any], frames: np.ndarray, files: list[str], summary: ConversionSummary
) -> Outlines:
    """The polygon of each object (`object_shape`, on the image of `frames`' width and height;
    `files` names the image in the summary's examples), counting what was fixed and dropped.

    Plain polygons (`plain_polygons`, checked for the whole batch at once) are taken as
    written; only the others go through `object_shape`, one at a time.
    """
    points, plain = plain_polygons(segmentations, frames)
    if all(plain):
        sizes = np.array([len(s[0]) // 2 for s in segmentations], np.int64)
        return Outlines(points, sizes, np.ones(len(segmentations), bool))
    polygons: list[Flat] = []
    kept: list[bool] = []
    for segmentation, (width, height), file, as_written in zip(
        segmentations, frames.tolist(), files, plain, strict=True
    ):
        if as_written:
            polygons.append(segmentation[0])
            kept.append(True)
            continue
        shape = object_shape(segmentation, int(width), int(height))
        summary.parts_degenerate += shape.parts_dropped
        summary.holes_filled += shape.holes_filled
        kept.append(shape.polygon is not None)
        if shape.polygon is None:
            summary.objects_without_shape += 1
            reason = shape.problem or "every part degenerate"
            summary.note("objects without a usable shape", f"{file} ({reason})")
            continue
        summary.polygons_clipped += shape.clipped
        summary.objects_merged += shape.parts > 1
        polygons.append(shape.polygon)
    sizes = np.array([len(polygon) // 2 for polygon in polygons], np.int64)
    flat = np.fromiter(itertools.chain.from_iterable(polygons), np.float64, 2 * int(sizes.sum()))
    return Outlines(flat.reshape(-1, 2), sizes, np.array(kept, bool))


def _points(parts: list[list[Any]]) -> Points | None:
    """The parts' points, concatenated; None unless every value is a float or an int that
    has one."""
    flat = list(itertools.chain.from_iterable(parts))
    if not set(map(type, flat)) <= _NUMBERS:
        return None
    try:
        return np.array(flat, np.float64).reshape(-1, 2)
    except OverflowError:  # an integer beyond any float
        return None


def merge_parts(parts: list[np.ndarray]) -> np.ndarray:
    """Join (N, 2) parts in order: each is spliced into the polygon so far at their closest
    pair."""
    merged = parts[0]
    for part in parts[1:]:
        i, j = _closest_pair(merged, part)
        loop = np.roll(part, -j, axis=0)
        merged = np.concatenate([merged[: i + 1], loop, loop[:1], merged[i:]])
    return merged


def _polygon_part(raw: Any) -> Flat | None:
    """A flat coordinate list of finite numbers, as floats; None if it is not one."""
    if not isinstance(raw, list) or len(raw) % 2:
        return None
    kinds = set(map(type, raw))
    if not kinds <= {float, int}:
        return None
    try:
        flat = raw if kinds == {float} else list(map(float, raw))
    except OverflowError:  # an integer beyond any float
        return None
    # A sum that is not finite: NaN or infinity somewhere (or huge values that overflow it)
    finite = -_INF < sum(flat) < _INF or all(-_INF < v < _INF for v in flat)
    return flat if finite else None


def _mask_parts(mask: np.ndarray) -> tuple[list[Flat], int]:
    """Outer contours of the mask, and how many holes they enclose."""
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return [], 0
    is_hole = hierarchy[0][:, 3] >= 0  # two levels: outer contours, and holes with a parent
    outer = [
        c.reshape(-1).astype(np.float64).tolist()
        for c, hole in zip(contours, is_hole, strict=True)
        if not hole
    ]
    return outer, int(is_hole.sum())


def _clipped(flat: Flat, right: float, bottom: float) -> Flat:
    """Points moved into [0, right] x [0, bottom]; `flat` itself when all are inside.
    -0.0 becomes 0.0, as numpy's clip against array bounds does."""
    xs, ys = flat[0::2], flat[1::2]
    if xs and min(xs) > 0.0 and min(ys) > 0.0 and max(xs) <= right and max(ys) <= bottom:
        return flat
    inside = flat[:]
    inside[0::2] = [0.0 if x <= 0.0 else right if x > right else x for x in xs]
    inside[1::2] = [0.0 if y <= 0.0 else bottom if y > bottom else y for y in ys]
    return inside


def _without_repeats(flat: Flat) -> Flat:
    """Drop each point equal to the one before it, and a last point equal to the first."""
    points = list(zip(flat[0::2], flat[1::2], strict=True))
    if any(map(eq, points, points[1:])):
        points = points[:1] + [p for q, p in itertools.pairwise(points) if p != q]
        flat = [v for point in points for v in point]
    if len(points) > 1 and points[-1] == points[0]:
        return flat[:-2]
    return flat


def _area(flat: Flat) -> float:
    xs, ys = flat[0::2], flat[1::2]
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
