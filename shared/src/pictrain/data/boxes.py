"""The rules that make a COCO `bbox` a training box, checked for thousands of boxes at once.

Detection writes these boxes; oriented boxes take them, upright, for objects that have no
outline (an OBJECT_DETECTION version). A box is counted by the first rule it breaks: no box,
not finite or not of positive size, outside the image once clipped, under 1 px once clipped;
clipped by more than CLIP_TOLERANCE is counted and kept.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence

import numpy as np

from pictrain.data.coco import NAN_BOX
from pictrain.data.polygons import CLIP_TOLERANCE
from pictrain.data.summary import ConversionSummary

MIN_SIDE = 1.0  # pixels: a box narrower than this, once clipped, is degenerate


def box_array(bboxes: Sequence[tuple[float, float, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) x, y, w, h of COCO boxes as the index holds them, and which the file gave none
    (`NAN_BOX`)."""
    n = len(bboxes)
    missing = np.fromiter(map(operator.is_, bboxes, itertools.repeat(NAN_BOX)), bool, n)
    boxes = np.fromiter(itertools.chain.from_iterable(bboxes), np.float64, 4 * n).reshape(n, 4)
    return boxes, missing


def clipped_boxes(
    boxes: np.ndarray,
    missing: np.ndarray,
    frames: np.ndarray,
    usable: np.ndarray,
    summary: ConversionSummary,
) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) x, y, w, h `boxes` (`missing`: the file gave none) clipped to their images
    (`frames`: width, height of each), as x1 y1 x2 y2, and which of the `usable` ones pass
    every rule. What breaks one is counted in `summary`."""
    x, y, w, h = boxes.T
    width, height = frames[:, 0], frames[:, 1]
    no_box, usable = drop(usable, missing)
    summary.boxes_missing += no_box
    # Arithmetic on the boxes already dropped may overflow or give NaN: it is not used.
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(boxes).all(axis=1) & (w > 0) & (h > 0)
        not_finite, usable = drop(usable, ~finite)
        right, bottom = x + w, y + h
        x1, y1 = np.where(x > 0.0, x, 0.0), np.where(y > 0.0, y, 0.0)
        x2, y2 = np.where(right < width, right, width), np.where(bottom < height, bottom, height)
        outside, usable = drop(usable, (x2 <= x1) | (y2 <= y1))
        small, usable = drop(usable, (x2 - x1 < MIN_SIDE) | (y2 - y1 < MIN_SIDE))
        clipped = (x1 - x > CLIP_TOLERANCE) | (y1 - y > CLIP_TOLERANCE)
        clipped |= (right - x2 > CLIP_TOLERANCE) | (bottom - y2 > CLIP_TOLERANCE)
    summary.boxes_degenerate += not_finite + small
    summary.boxes_outside += outside
    summary.boxes_clipped += int(np.count_nonzero(usable & clipped))
    return np.stack([x1, y1, x2, y2], axis=1), usable


def drop(usable: np.ndarray, broken: np.ndarray) -> tuple[int, np.ndarray]:
    """How many usable entries break a rule, and those that do not."""
    dropped = usable & broken
    return int(np.count_nonzero(dropped)), usable & ~dropped
