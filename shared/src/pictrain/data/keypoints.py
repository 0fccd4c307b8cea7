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
object (`batch_poses`, the rules as numpy masks over a batch of images), in order:
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

from pictrain.data.coco import NAN_BOX, CocoAnnotation, CocoIndex, Skeleton
from pictrain.data.labels import known_annotations
from pictrain.data.polygons import CLIP_TOLERANCE
from pictrain.data.summary import ConversionSummary
from pictrain.errors import UserError
from pictrain.params import DEFAULT_BOX_PADDING, Parameters

log = logging.getLogger(__name__)

# COCO's person keypoints, as pycocotools writes them (ultralytics' OKS_SIGMA: in float32).
_COCO_TENTHS = (0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07)
COCO_SIGMAS = tuple(v / 10 for v in (*_COCO_TENTHS, 0.87, 0.87, 0.89, 0.89))
AREA_PER_BOX = 0.53  # ultralytics' object area from its box, for OKS
HULL_TOLERANCE = 0.5  # px: a box this close to the labelled points' hull is that hull
HOLD_TOLERANCE = 1.0  # px: a rectangle holds a point this far outside it
_SIDE = re.compile(r"^(left|right)([_\- ].*)$", re.IGNORECASE)


@dataclass(frozen=True)
class PoseOptions:
    """The parameters that shape a pose dataset."""

    box_padding: float = DEFAULT_BOX_PADDING
    flip_idx: tuple[int, ...] | None = None
    sigmas: tuple[float, ...] | None = None

    @classmethod
    def of(cls, params: Parameters) -> PoseOptions:
        return cls(
            box_padding=params.keypoint_box_padding,
            flip_idx=tuple(params.flip_idx) if params.flip_idx is not None else None,
            sigmas=tuple(params.kpt_oks_sigmas) if params.kpt_oks_sigmas is not None else None,
        )


@dataclass(frozen=True)
class PoseLayout:
    """The dataset's points: what ultralytics' data.yaml, the evaluation and the ONNX carry."""

    names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]  # numbered from 1, as COCO writes them
    flip_idx: tuple[int, ...] | None  # None: horizontal and vertical flips are off
    sigmas: tuple[float, ...]
    box_padding: float
    # The labels that have a skeleton: a MULTI version's others (rectangles only) take no
    # keypoints on the platform.
    labels: tuple[str, ...]

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
        labels=tuple(sorted(layouts)),
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


class Poses(NamedTuple):
    """The objects of a batch of images, as trained and scored, in the images' pixels."""

    image: np.ndarray  # (n,) the index of each object's image in the batch
    cls: np.ndarray  # (n,)
    boxes: np.ndarray  # (n, 4) x, y, w, h; the file's as written (COCO's, not clipped)
    no_box: np.ndarray  # (n,) the file gave none (a rectangle without `bbox`)
    keypoints: np.ndarray  # (n, K, 3) x, y, visibility 0/1/2; unlabelled points are 0, 0, 0
    area: np.ndarray  # (n,)


# One image: its annotations, its width and height (as displayed).
ImageAnnotations = tuple[Sequence[CocoAnnotation], int, int]


def batch_poses(
    images: Sequence[ImageAnnotations],
    classes: dict[int, int],
    layout: PoseLayout,
    summary: ConversionSummary,
) -> Poses:
    """The objects of `images` by the module's rules, each image's in file order (keypoint
    objects, then the rectangles none took); what is fixed or dropped is counted in `summary`
    (crowds and unknown categories too). The rules run as numpy masks over the whole batch."""
    size = layout.size
    found = _Found()
    for i, (entries, _, _) in enumerate(images):
        for cls, annotation in known_annotations(entries, classes, summary):
            if not annotation.keypoints:
                found.rectangles.append((i, cls, annotation))
            elif type(annotation.keypoints) is list and len(annotation.keypoints) == 3 * size:
                found.objects.append((i, cls, annotation))
            else:
                summary.keypoints_malformed += 1
    frames = np.array([(w, h) for _, w, h in images], np.float64).reshape(-1, 2)
    objects, hull_boxes = _objects(found.objects, frames, size, summary)
    # The box: the rectangle holding the points, else the padded hull for Picsellia's, else
    # the file's; the area: the file's only with the file's box.
    rectangle = _rectangles_holding(objects, found.rectangles)
    taken = rectangle >= 0
    from_points = hull_boxes & ~taken
    summary.boxes_from_rectangles += int(np.count_nonzero(taken))
    summary.boxes_from_points += int(np.count_nonzero(from_points))
    boxes = objects.boxes.copy()
    boxes[from_points] = _padded(
        objects.keypoints[from_points], layout.box_padding, frames[objects.image[from_points]]
    )
    if taken.any():
        boxes[taken] = [found.rectangles[k][2].bbox for k in rectangle[taken].tolist()]
    given = np.where(taken | from_points, np.nan, objects.area)
    made = objects.no_box & ~(taken | from_points)  # a box made is a box
    objects = objects._replace(boxes=boxes, area=given, no_box=made)
    used = set(rectangle[taken].tolist())
    leftover = [r for k, r in enumerate(found.rectangles) if k not in used]
    summary.boxes_without_keypoints += len(leftover)
    merged = Poses(
        *(np.concatenate(pair) for pair in zip(objects, _Found.arrays(leftover, size), strict=True))
    )
    summary.areas_recomputed += int(np.count_nonzero(~(merged.area > 1.0)))
    merged = merged._replace(area=_area(merged.area, merged.boxes))
    order = np.argsort(merged.image, kind="stable")
    return Poses(*(field[order] for field in merged))


class _Found:
    """A batch's annotations sorted out: (image, class, annotation) of each object with a list
    of 3 x K keypoints, and of each rectangle (no keypoints)."""

    def __init__(self) -> None:
        self.objects: list[tuple[int, int, CocoAnnotation]] = []
        self.rectangles: list[tuple[int, int, CocoAnnotation]] = []

    @staticmethod
    def arrays(found: list[tuple[int, int, CocoAnnotation]], size: int) -> Poses:
        """`Poses` of these annotations as the file gives them, every point unlabelled."""
        n = len(found)
        bboxes = [a.bbox for _, _, a in found]
        return Poses(
            image=np.fromiter((i for i, _, _ in found), np.int64, n),
            cls=np.fromiter((c for _, c, _ in found), np.int64, n),
            boxes=np.array(bboxes, np.float64).reshape(n, 4),
            no_box=np.fromiter((b is NAN_BOX for b in bboxes), bool, n),
            keypoints=np.zeros((n, size, 3)),
            area=np.fromiter((a.area for _, _, a in found), np.float64, n),
        )


def _objects(
    found: list[tuple[int, int, CocoAnnotation]],
    frames: np.ndarray,
    size: int,
    summary: ConversionSummary,
) -> tuple[Poses, np.ndarray]:
    """The keypoint objects (K = `size`) with their points checked and fixed, boxes and areas
    as the file gives them; and which boxes are Picsellia's (the labelled points' hull, or
    none)."""
    flat = [v for _, _, a in found for v in a.keypoints]
    if not set(map(type, flat)) <= {int, float}:  # bools, text, None are no numbers
        typed = [set(map(type, a.keypoints)) <= {int, float} for _, _, a in found]
        summary.keypoints_malformed += typed.count(False)
        found = [item for item, ok in zip(found, typed, strict=True) if ok]
        flat = [v for _, _, a in found for v in a.keypoints]
    poses = _Found.arrays(found, size)
    points = np.array(flat, np.float64).reshape(len(found), size, 3)
    visibility = points[:, :, 2]
    bad = ~np.isin(visibility, (0, 1, 2)).all(axis=1)
    summary.keypoints_bad_visibility += int(np.count_nonzero(bad))
    labelled = visibility > 0
    with np.errstate(invalid="ignore"):
        broken = ~bad & (labelled & ~np.isfinite(points[:, :, :2]).all(axis=2)).any(axis=1)
    summary.keypoints_malformed += int(np.count_nonzero(broken))
    keep = ~(bad | broken)
    poses, points, labelled = _select(poses, keep), points[keep], labelled[keep]
    points[~labelled] = 0.0
    hull = _hull(points, labelled)  # Picsellia's box: before the points outside are left out
    frame = frames[poses.image][:, None, :]  # (n, 1, 2)
    xy = points[:, :, :2]
    out = labelled & ((xy < -CLIP_TOLERANCE) | (xy > frame + CLIP_TOLERANCE)).any(axis=2)
    summary.keypoints_outside += int(np.count_nonzero(out))
    points[out] = 0.0
    points[:, :, :2] = np.clip(points[:, :, :2], 0, frame)
    some = (labelled & ~out).any(axis=1)
    summary.poses_without_points += int(np.count_nonzero(~some))
    poses, points, hull = _select(poses, some), points[some], hull[some]
    with np.errstate(invalid="ignore"):
        picsellias = (np.abs(poses.boxes - hull) <= HULL_TOLERANCE).all(axis=1)
    picsellias |= poses.no_box | ~np.isfinite(poses.boxes).all(axis=1)
    return poses._replace(keypoints=points), picsellias


def _select(poses: Poses, keep: np.ndarray) -> Poses:
    return Poses(*(field[keep] for field in poses))


def _hull(points: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """(n, 4) x, y, w, h of each object's labelled points (NaN for none)."""
    xy = points[:, :, :2]
    mask = labelled[:, :, None]
    with np.errstate(invalid="ignore"):
        low = np.where(mask, xy, np.inf).min(axis=1)
        high = np.where(mask, xy, -np.inf).max(axis=1)
        hull = np.concatenate([low, high - low], axis=1)
    hull[~labelled.any(axis=1)] = np.nan
    return hull


def _padded(points: np.ndarray, padding: float, frames: np.ndarray) -> np.ndarray:
    """(n, 4) x, y, w, h: the hull of each object's labelled points, grown by `padding` of its
    size on each side, clipped to its image ((n, 2) width, height `frames`)."""
    x, y, w, h = _hull(points, points[:, :, 2] > 0).T
    width, height = frames.T
    left, top = np.maximum(x - w * padding, 0), np.maximum(y - h * padding, 0)
    right = np.minimum(x + w + w * padding, width)
    bottom = np.minimum(y + h + h * padding, height)
    return np.stack([left, top, right - left, bottom - top], axis=1)


def _rectangles_holding(
    poses: Poses, rectangles: list[tuple[int, int, CocoAnnotation]]
) -> np.ndarray:
    """MULTI: for each object, the smallest same-label rectangle of its image, not taken by an
    object before it, that holds all its labelled points: its index in `rectangles`, or -1."""
    matched = np.full(len(poses.image), -1, np.int64)
    if not rectangles:
        return matched
    by_image: dict[int, list[int]] = {}
    for k, (image, _, _) in enumerate(rectangles):
        by_image.setdefault(image, []).append(k)
    hulls = _hull(poses.keypoints, poses.keypoints[:, :, 2] > 0).tolist()
    taken: set[int] = set()
    for n, (image, cls) in enumerate(zip(poses.image.tolist(), poses.cls.tolist(), strict=True)):
        x0, y0, w, h = hulls[n]
        best, best_area = -1, math.inf
        for k in by_image.get(image, ()):
            x, y, rw, rh = rectangles[k][2].bbox
            if rectangles[k][1] != cls or k in taken or not rw * rh < best_area:  # NaN never
                continue
            if (
                x - HOLD_TOLERANCE <= x0
                and y - HOLD_TOLERANCE <= y0
                and x0 + w <= x + rw + HOLD_TOLERANCE
                and y0 + h <= y + rh + HOLD_TOLERANCE
            ):
                best, best_area = k, rw * rh
        if best >= 0:
            taken.add(best)
            matched[n] = best
    return matched


def _area(given: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The given area where it is above 1 px (NaN is not), else the box's estimate."""
    with np.errstate(invalid="ignore"):
        return np.where(given > 1.0, given, boxes[:, 2] * boxes[:, 3] * AREA_PER_BOX)
