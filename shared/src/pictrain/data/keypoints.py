"""Pose: COCO keypoints -> the objects ultralytics trains on and COCO scores, one set of rules for
the converter and the test split's ground truth.

One point layout per dataset (`resolve_layout`): each label with keypoints names its vertices
(the COCO category's `keypoints`, on Picsellia the label's skeleton); they must agree on how
many, and a dataset where no label has any fails. `flip_idx` (which point a horizontal flip
turns each point into) is the parameter, else read from `left_*` / `right_*` vertex names, else
there is none and flips are turned off. `kpt_oks_sigmas` is the parameter, else COCO's for 17
points, else 1/K for each (ultralytics' defaults); the same numbers train and score.

Picsellia's KEYPOINT export (its SDK's `COCOFileBuilder`) writes the hull of the labelled points
as `bbox`, 1.0 as `area`, and a box of infinities for an object without a labelled point. Per
object (`image_poses`), in order:
- `keypoints` must be 3 x K numbers, each visibility 0, 1 or 2, else the object is dropped;
- a labelled point (v 1 or 2) outside the image is made unlabelled (0, 0, 0);
- an object left without a labelled point is dropped;
- its box: the same-label rectangle of the image that holds all its labelled points (a MULTI
  version's own box; the smallest one not taken yet); else, when the file's box is the hull of
  the labelled points (or no box), that hull grown by `keypoint_box_padding` of its width and
  height on each side and clipped to the image; else the file's box;
- its area: the file's when the box is the file's and the area above 1 px; else w x h x 0.53 of
  the box, the estimate ultralytics' own OKS makes (COCO's OKS divides by the area: 1.0 would
  make every distance enormous);
- rectangles no object took (MULTI) are objects too, every point unlabelled: trained as boxes,
  ignored by the keypoint scoring (COCO ignores objects without a labelled point).
Every fix and drop is counted in the split's `ConversionSummary`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from pictrain.data.coco import CocoAnnotation, CocoIndex, Skeleton
from pictrain.data.polygons import CLIP_TOLERANCE
from pictrain.data.summary import ConversionSummary
from pictrain.errors import UserError

log = logging.getLogger(__name__)

# COCO's person keypoints (pycocotools' defaults, ultralytics' OKS_SIGMA).
COCO_SIGMAS = tuple(
    v / 10 for v in (0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62)
) + tuple(v / 10 for v in (1.07, 1.07, 0.87, 0.87, 0.89, 0.89))
AREA_PER_BOX = 0.53  # ultralytics' object area from its box, for OKS
HULL_TOLERANCE = 0.5  # px: a box this close to the labelled points' hull is that hull
HOLD_TOLERANCE = 1.0  # px: a rectangle holds a point this far outside it
DEFAULT_BOX_PADDING = 0.1
_REAL = (int, float)
_SIDE = re.compile(r"^(left|right)([_\- ].*)$", re.IGNORECASE)


@dataclass(frozen=True)
class PoseOptions:
    """The parameters that shape a pose dataset (`Parameters.pose_options()`)."""

    box_padding: float = DEFAULT_BOX_PADDING
    flip_idx: tuple[int, ...] | None = None
    sigmas: tuple[float, ...] | None = None


@dataclass(frozen=True)
class PoseLayout:
    """The dataset's points: what ultralytics' data.yaml, the evaluation and the ONNX carry."""

    names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]  # numbered from 1, as COCO writes them
    flip_idx: tuple[int, ...] | None  # None: horizontal and vertical flips are off
    sigmas: tuple[float, ...]
    box_padding: float

    @property
    def size(self) -> int:
        return len(self.names)

    def data_yaml(self, classes: int) -> dict[str, Any]:
        """The keys ultralytics reads from data.yaml for pose."""
        fields: dict[str, Any] = {"kpt_shape": [self.size, 3]}
        if self.flip_idx is not None:
            fields["flip_idx"] = list(self.flip_idx)
        fields["kpt_oks_sigmas"] = list(self.sigmas)
        fields["kpt_names"] = {i: list(self.names) for i in range(classes)}
        return fields

    def skeleton(self) -> dict[str, Any]:
        """The layout as COCO's category keys (the ONNX metadata `skeleton`)."""
        return {"keypoints": list(self.names), "skeleton": [list(e) for e in self.edges]}

    def described(self) -> dict[str, Any]:
        """Everything, under the parameters' names where one sets it (config.yaml)."""
        return {
            **self.skeleton(),
            "flip_idx": list(self.flip_idx) if self.flip_idx is not None else None,
            "kpt_oks_sigmas": list(self.sigmas),
            "keypoint_box_padding": self.box_padding,
        }


def resolve_layout(
    indexes: Iterable[CocoIndex], names: Sequence[str], options: PoseOptions
) -> PoseLayout:
    """The one layout of every split's labels among `names` (the labelmap)."""
    layouts: dict[str, Skeleton] = {}
    for index in indexes:
        for category_id, skeleton in sorted(index.skeletons.items()):
            name = index.categories[category_id]
            if name not in names:
                continue
            known = layouts.setdefault(name, skeleton)
            if len(known.names) != len(skeleton.names):
                raise UserError(
                    f"label {name} has {len(known.names)} keypoints in one split and "
                    f"{len(skeleton.names)} in another: one point layout per dataset"
                )
    if not layouts:
        raise UserError(
            "no label has a skeleton (its keypoint names): a pose dataset needs them, set on "
            "each label of a KEYPOINT version on Picsellia, or as the `keypoints` (and "
            "`skeleton`) of each category of a COCO file"
        )
    sizes = {name: len(layout.names) for name, layout in sorted(layouts.items())}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name} ({size})" for name, size in sizes.items())
        raise UserError(
            f"labels disagree on their number of keypoints: {listed}; one point layout per "
            "dataset: train one pose model per layout"
        )
    first = layouts[min(layouts)]
    if any(layout != first for layout in layouts.values()):
        log.warning(
            "labels name their keypoints differently (%s): the points are matched by position, "
            "named and drawn as %s's",
            "; ".join(f"{n}: {', '.join(layout.names)}" for n, layout in sorted(layouts.items())),
            min(layouts),
        )
    size = len(first.names)
    common = first.names if all(lt.names == first.names for lt in layouts.values()) else None
    return PoseLayout(
        names=first.names,
        edges=first.edges,
        flip_idx=_flip_idx(options.flip_idx, common, size),
        sigmas=_sigmas(options.sigmas, size),
        box_padding=options.box_padding,
    )


def _flip_idx(given: tuple[int, ...] | None, names: tuple[str, ...] | None, size: int) -> Any:
    if given is not None:
        if sorted(given) != list(range(size)) or any(given[given[i]] != i for i in given):
            raise UserError(
                f"flip_idx {list(given)} must list each of the {size} keypoints once, as pairs "
                "that swap (flip_idx[flip_idx[i]] == i)"
            )
        return given
    derived = flip_idx_from_names(names) if names is not None else None
    if derived is None:
        log.warning(
            "no flip_idx: the keypoint names are no left_*/right_* pairs (or the labels name "
            "them differently), so a flipped image's points cannot be swapped; horizontal and "
            "vertical flips are turned off (fliplr, flipud 0). Give `flip_idx` to keep them"
        )
    return derived


def flip_idx_from_names(names: Sequence[str]) -> tuple[int, ...] | None:
    """Each `left_x` swaps with `right_x` (any case, `_`, `-` or space), other points stay;
    None without such a pair, or when a side lacks its other."""
    position = {name.lower(): i for i, name in enumerate(names)}
    flip = list(range(len(names)))
    for i, name in enumerate(names):
        side = _SIDE.match(name)
        if side is None:
            continue
        other = ("right" if side.group(1).lower() == "left" else "left") + side.group(2).lower()
        if other not in position:
            return None
        flip[i] = position[other]
    return tuple(flip) if flip != list(range(len(names))) else None


def _sigmas(given: tuple[float, ...] | None, size: int) -> tuple[float, ...]:
    if given is None:
        return COCO_SIGMAS if size == len(COCO_SIGMAS) else (1 / size,) * size
    if len(given) != size:
        raise UserError(f"kpt_oks_sigmas has {len(given)} values: the keypoints are {size}")
    return given


class Pose(NamedTuple):
    """One object as trained and scored, in the image's pixels."""

    cls: int
    box: tuple[float, float, float, float]  # x, y, w, h (the file's is not clipped: COCO's)
    keypoints: np.ndarray  # (K, 3): x, y, visibility 0/1/2; unlabelled points are 0, 0, 0
    area: float


def image_poses(
    annotations: Iterable[CocoAnnotation],
    classes: dict[int, int],
    width: int,
    height: int,
    layout: PoseLayout,
    summary: ConversionSummary,
) -> list[Pose]:
    """One image's objects by the module's rules; what is fixed or dropped counted in `summary`
    (crowds and unknown categories too)."""
    size = layout.size
    rectangles: list[tuple[int, CocoAnnotation]] = []
    found: list[tuple[int, CocoAnnotation, np.ndarray]] = []
    for annotation in annotations:
        cls = classes.get(annotation.category_id)
        if cls is None:
            summary.annotations_unknown_category += 1
        elif annotation.iscrowd:
            summary.annotations_crowd += 1
        elif not annotation.keypoints:
            rectangles.append((cls, annotation))
        else:
            points = _points(annotation.keypoints, size, summary)
            if points is not None:
                found.append((cls, annotation, points))
    taken: set[int] = set()
    poses = []
    for cls, annotation, points in found:
        hull = _labelled_hull(points)
        inside = _inside(points, width, height, summary)
        labelled = inside[:, 2] > 0
        if not labelled.any():
            summary.poses_without_points += 1
            continue
        xy = inside[labelled, :2]
        area = math.nan  # recomputed, unless the box is the file's own
        rectangle = _holding(rectangles, taken, cls, xy)
        if rectangle is not None:
            taken.add(rectangle)
            box = rectangles[rectangle][1].bbox
            summary.boxes_from_rectangles += 1
        elif _is_hull(annotation.bbox, hull):
            box = _padded(xy, layout.box_padding, width, height)
            summary.boxes_from_points += 1
        else:
            box, area = annotation.bbox, annotation.area
        poses.append(Pose(cls, box, inside, _area(area, box, summary)))
    for k, (cls, annotation) in enumerate(rectangles):
        if k not in taken:
            summary.boxes_without_keypoints += 1
            area = _area(annotation.area, annotation.bbox, summary)
            poses.append(Pose(cls, annotation.bbox, np.zeros((size, 3)), area))
    return poses


def _points(raw: Any, size: int, summary: ConversionSummary) -> np.ndarray | None:
    """(K, 3) float64, or None (counted) when malformed."""
    if type(raw) is not list or len(raw) != 3 * size or not all(type(v) in _REAL for v in raw):
        summary.keypoints_malformed += 1
        return None
    points = np.array(raw, np.float64).reshape(size, 3)
    visibility = points[:, 2]
    if not np.isin(visibility, (0, 1, 2)).all():
        summary.keypoints_bad_visibility += 1
        return None
    if not np.isfinite(points[visibility > 0, :2]).all():
        summary.keypoints_malformed += 1
        return None
    points[visibility == 0] = 0.0
    return points


def _labelled_hull(points: np.ndarray) -> tuple[float, float, float, float] | None:
    """x, y, w, h of the labelled points as the file lists them (Picsellia's box), or None."""
    xy = points[points[:, 2] > 0, :2]
    if not len(xy):
        return None
    (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def _inside(points: np.ndarray, width: int, height: int, summary: ConversionSummary) -> np.ndarray:
    """Labelled points outside the image made unlabelled (counted); those within
    CLIP_TOLERANCE of it moved onto its border."""
    x, y, labelled = points[:, 0], points[:, 1], points[:, 2] > 0
    out = labelled & (
        (x < -CLIP_TOLERANCE)
        | (y < -CLIP_TOLERANCE)
        | (x > width + CLIP_TOLERANCE)
        | (y > height + CLIP_TOLERANCE)
    )
    inside = points.copy()
    if out.any():
        summary.keypoints_outside += int(np.count_nonzero(out))
        inside[out] = 0.0
    inside[:, 0] = np.clip(inside[:, 0], 0, width)
    inside[:, 1] = np.clip(inside[:, 1], 0, height)
    return inside


def _holding(
    rectangles: list[tuple[int, CocoAnnotation]], taken: set[int], cls: int, xy: np.ndarray
) -> int | None:
    """The smallest rectangle of class `cls` not taken yet that holds every point of `xy`."""
    (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
    best, best_area = None, math.inf
    for k, (rect_cls, annotation) in enumerate(rectangles):
        x, y, w, h = annotation.bbox
        if rect_cls != cls or k in taken or not w * h < best_area:  # NaN boxes never hold
            continue
        if (
            x - HOLD_TOLERANCE <= x0
            and y - HOLD_TOLERANCE <= y0
            and x1 <= x + w + HOLD_TOLERANCE
            and y1 <= y + h + HOLD_TOLERANCE
        ):
            best, best_area = k, w * h
    return best


def _is_hull(
    box: tuple[float, float, float, float], hull: tuple[float, float, float, float] | None
) -> bool:
    """Whether `box` is Picsellia's: the labelled points' hull, or none at all."""
    if not all(math.isfinite(v) for v in box):
        return True
    return hull is not None and all(
        abs(a - b) <= HULL_TOLERANCE for a, b in zip(box, hull, strict=True)
    )


def _padded(
    xy: np.ndarray, padding: float, width: int, height: int
) -> tuple[float, float, float, float]:
    (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
    pad_x, pad_y = (x1 - x0) * padding, (y1 - y0) * padding
    left, top = max(0.0, x0 - pad_x), max(0.0, y0 - pad_y)
    right, bottom = min(float(width), x1 + pad_x), min(float(height), y1 + pad_y)
    return float(left), float(top), float(right - left), float(bottom - top)


def _area(
    given: float, box: tuple[float, float, float, float], summary: ConversionSummary
) -> float:
    if given > 1.0:  # NaN (none) is not
        return given
    summary.areas_recomputed += 1
    return box[2] * box[3] * AREA_PER_BOX if all(math.isfinite(v) for v in box) else math.nan
