"""COCO objects -> oriented boxes: the minimum-area rotated rectangle of each object's outline.

Rules, in order:
- an object with a `segmentation` (polygons or an RLE mask): its outline is the polygon that
  segmentation writes (`pictrain.data.polygons`: every usable part of the object, clipped to
  the image, degenerate parts dropped, all counted the same way), its box the minimum-area
  rectangle of all those points (cv2.minAreaRect), which holds every part;
- an object without one (`segmentation` absent or empty, as an OBJECT_DETECTION export writes
  its rectangles): its `bbox`, clipped and checked as detection does (`pictrain.data.boxes`),
  at angle 0;
- a rectangle with a side under 1 px is degenerate: dropped and counted, as detection does;
- corners may lie outside the image (the rectangle of an object cut by the border often
  does, as in DOTA's labels, which ultralytics takes as they are), but ultralytics rejects a
  whole image when one label's upright enclosing box is over 1% wider or taller than the image.
  Such a rectangle is replaced by the smallest one that stays within half that margin, among
  the orientations of the outline's hull edges (the upright box always does), and counted.

Corners are in cv2.boxPoints' order, in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pictrain.data.boxes import MIN_SIDE, box_array, clipped_boxes
from pictrain.data.coco import CocoAnnotation
from pictrain.data.polygons import CLIP_TOLERANCE, outlines
from pictrain.data.summary import ConversionSummary

# The widest and tallest a label's upright enclosing box may be, in image widths and heights,
# and how far outside the image its centre may be: ultralytics' label check allows 1.01 and
# -0.01; half that margin is left for float32 rounding.
FIT = 1.005
Corners = np.ndarray  # (n, 4, 2) float64 pixels


def object_rectangles(
    annotations: Sequence[CocoAnnotation],
    frames: np.ndarray,
    files: Sequence[str],
    summary: ConversionSummary,
) -> tuple[Corners, np.ndarray]:
    """The oriented box of each object that has one, in order, and which objects do.

    `frames`: each object's image width and height; `files`: its image's name, for the
    summary's examples. What the rules fix and drop is counted in `summary`.
    """
    boxed = np.array([a.segmentation is None or a.segmentation == [] for a in annotations], bool)
    boxed = boxed.reshape(-1)
    corners = np.zeros((len(annotations), 4, 2))
    kept = np.zeros(len(annotations), bool)
    if boxed.any():
        rows = np.flatnonzero(boxed)
        boxes, missing = box_array([annotations[i].bbox for i in rows])
        xyxy, usable = clipped_boxes(
            boxes, missing, frames[rows], np.ones(len(rows), bool), summary
        )
        x1, y1, x2, y2 = xyxy.T
        corners[rows] = np.stack([x1, y2, x1, y1, x2, y1, x2, y2], axis=1).reshape(-1, 4, 2)
        kept[rows] = usable
    if not boxed.all():
        rows = np.flatnonzero(~boxed)
        shapes = outlines(
            [annotations[i].segmentation for i in rows],
            frames[rows],
            [files[i] for i in rows],
            summary,
        )
        shaped = rows[shapes.kept]
        corners[shaped] = _rectangles(shapes.points, shapes.sizes, frames[shaped], summary)
        sides = np.linalg.norm(corners[shaped] - corners[shaped][:, [1, 2, 3, 0]], axis=2)
        thin = sides.min(axis=1) < MIN_SIDE
        summary.boxes_degenerate += int(np.count_nonzero(thin))
        kept[shaped[~thin]] = True
    return corners[kept], kept


def _rectangles(
    points: np.ndarray, sizes: np.ndarray, frames: np.ndarray, summary: ConversionSummary
) -> Corners:
    """The minimum-area rectangle of each outline (`sizes` points each, in order); one that
    ultralytics would reject is turned (`_fitting`)."""
    ends = np.cumsum(sizes)
    starts = ends - sizes
    narrow = points.astype(np.float32)  # what cv2.minAreaRect takes
    rects = [
        cv2.minAreaRect(narrow[start:end])
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True)
    ]
    corners = _box_points(np.array([(x, y, w, h, a) for (x, y), (w, h), a in rects], np.float64))
    # float32 noise at the border: clamped (without being reported), as outlines are
    edges = np.stack([np.zeros_like(frames), frames], axis=1)[:, :, None, :]  # (n, 2, 1, 2)
    near = np.abs(corners[:, None] - edges) <= CLIP_TOLERANCE
    corners = np.where(near[:, 0], 0.0, np.where(near[:, 1], edges[:, 1], corners))
    for i in np.flatnonzero(~_fit(corners, frames)).tolist():
        corners[i] = _fitting(points[starts[i] : ends[i]], frames[i])
        summary.boxes_turned += 1
    return corners


def _box_points(rects: np.ndarray) -> Corners:
    """cv2.boxPoints of (n, 5) centre x, y, width, height, angle in degrees, in float64."""
    cx, cy, width, height, degrees = rects.reshape(-1, 5).T
    radians = np.deg2rad(degrees)
    b, a = np.cos(radians) * 0.5, np.sin(radians) * 0.5
    x0, y0 = cx - a * height - b * width, cy + b * height - a * width
    x1, y1 = cx + a * height - b * width, cy - b * height - a * width
    return np.stack(
        [x0, y0, x1, y1, 2 * cx - x0, 2 * cy - y0, 2 * cx - x1, 2 * cy - y1], axis=1
    ).reshape(-1, 4, 2)


def _fit(corners: Corners, frames: np.ndarray) -> np.ndarray:
    """Whether each rectangle's upright enclosing box passes ultralytics' label check."""
    low, high = corners.min(axis=1) / frames, corners.max(axis=1) / frames
    centre = (low + high) / 2
    return ((high - low <= FIT) & (centre >= 1 - FIT) & (centre <= FIT)).all(axis=1)


def _fitting(points: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """The smallest rectangle holding `points` that passes `_fit`, among the orientations of
    their convex hull's edges and the upright one (which passes: the points are inside)."""
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    edges = np.roll(hull, -1, axis=0) - hull
    lengths = np.linalg.norm(edges, axis=1, keepdims=True)
    axes = np.concatenate([[[1.0, 0.0]], edges[lengths[:, 0] > 0] / lengths[lengths[:, 0] > 0]])
    normals = np.stack([-axes[:, 1], axes[:, 0]], axis=1)
    along, across = hull @ axes.T, hull @ normals.T  # (points, orientations)
    lo_u, hi_u, lo_v, hi_v = along.min(0), along.max(0), across.min(0), across.max(0)
    corners = np.stack(
        [
            axes * lo_u[:, None] + normals * lo_v[:, None],
            axes * hi_u[:, None] + normals * lo_v[:, None],
            axes * hi_u[:, None] + normals * hi_v[:, None],
            axes * lo_u[:, None] + normals * hi_v[:, None],
        ],
        axis=1,
    )
    area = np.where(_fit(corners, frame[None]), (hi_u - lo_u) * (hi_v - lo_v), np.inf)
    return corners[int(np.argmin(area))]
