"""COCO polygons, RLE masks and boxes -> YOLO oriented-box lines (`cls x1 y1 ... x4 y4`).

Images are 100 x 50 unless said otherwise. Category 3 is "dog", class 1; category 7 is "cat",
class 0. Corners are compared as sets, in pixels: their order is cv2.boxPoints', which
ultralytics does not need.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pycocotools import mask as coco_mask
from test_convert import NAMES, annotation, image_entry, make_coco, make_image, read_labels

from pictrain.data import convert
from pictrain.data.convert import convert_obb
from pictrain.data.obb import FIT
from pictrain.data.polygons import object_shape
from pictrain.data.summary import ConversionSummary

FRAME = (100, 50)
PIXEL = 1e-4  # cv2.minAreaRect works in float32: corners within this of the exact ones


def _obb(tmp_path: Path, *segmentations: Any, bbox: list[float] | None = None, **extra: Any):
    """One 100 x 50 image `a.jpg`, one dog object per segmentation."""
    make_image(tmp_path / "src" / "a.jpg")
    annotations = [annotation(1, bbox, segmentation=s, **extra) for s in segmentations]
    coco = make_coco(tmp_path / "coco.json", [image_entry(1, "a.jpg")], annotations)
    return convert_obb(coco, tmp_path / "src", tmp_path / "out", "train", NAMES)


def _boxes(tmp_path: Path, stem: str = "a") -> list[tuple[int, np.ndarray]]:
    """Each label line's class and corners, in pixels."""
    rows = [line.split() for line in read_labels(tmp_path, stem)]
    assert all(len(row) == 9 for row in rows)
    return [(int(row[0]), np.array(row[1:], float).reshape(4, 2) * FRAME) for row in rows]


def _same_corners(corners: np.ndarray, expected: Any, tolerance: float = PIXEL) -> bool:
    expected = np.asarray(expected, float).reshape(4, 2)
    distances = np.linalg.norm(corners[:, None] - expected[None], axis=2)
    return bool(
        (distances.min(axis=0) <= tolerance).all() and (distances.min(1) <= tolerance).all()
    )


def test_rotated_rectangle_outline_gives_its_own_corners(tmp_path: Path) -> None:
    rectangle = cv2.boxPoints(((50, 25), (40, 10), 30)).astype(float)
    inside = [50, 25, 52, 24]  # points within it change nothing
    outline = [*rectangle[:2].ravel(), *inside[:2], *rectangle[2:].ravel(), *inside[2:]]
    summary = _obb(tmp_path, [outline])
    [(cls, corners)] = _boxes(tmp_path)
    assert cls == 1 and _same_corners(corners, rectangle)
    assert str(summary) == "train: 1 of 1 images written (0 background), 1 oriented boxes"


def test_multi_part_object_gets_one_box_around_every_part(tmp_path: Path) -> None:
    """Squares (0,0)-(2,2) and (20,20)-(22,22): the smallest rectangle holding both runs along
    the diagonal, 22√2 long and 2√2 wide, centred on (11, 11); two corners lie outside the
    image, as the rectangle of an object at the border may."""
    summary = _obb(tmp_path, [[0, 0, 2, 0, 2, 2, 0, 2], [20, 20, 22, 20, 22, 22, 20, 22]])
    [(_, corners)] = _boxes(tmp_path)
    assert _same_corners(corners, [(21, 23), (23, 21), (1, -1), (-1, 1)])
    assert (summary.labels_written, summary.objects_merged) == (1, 1)
    assert "1 multi-part objects joined into one box" in str(summary)


@pytest.mark.parametrize("compressed", [True, False])
def test_rle_mask_gives_the_rectangle_of_its_outer_contour(
    tmp_path: Path, compressed: bool
) -> None:
    mask = np.zeros((50, 100), dtype=np.uint8)
    mask[10:40, 10:40] = 1  # a ring: its hole is filled, as segmentation fills it
    mask[20:30, 20:30] = 0
    rle = coco_mask.encode(np.asfortranarray(mask))
    counts: Any = rle["counts"].decode()
    if not compressed:  # the same runs, column by column (starting with 0s, as this mask does)
        counts = [len(list(run)) for _, run in itertools.groupby(mask.T.ravel().tolist())]
    summary = _obb(tmp_path, {"size": [50, 100], "counts": counts})
    [(_, corners)] = _boxes(tmp_path)
    assert _same_corners(corners, [(10, 10), (39, 10), (39, 39), (10, 39)])
    assert (summary.labels_written, summary.holes_filled) == (1, 1)


@pytest.mark.parametrize("outline", [[], None], ids=["empty segmentation", "no segmentation"])
def test_object_without_outline_is_its_box_at_angle_zero(tmp_path: Path, outline: Any) -> None:
    """As an OBJECT_DETECTION export writes its rectangles; clipped as detection clips them."""
    make_image(tmp_path / "src" / "a.jpg")
    annotations = [
        annotation(1, [10, 5, 20, 10], segmentation=outline),
        annotation(1, [90, 40, 20, 20], segmentation=outline, category_id=7),
        annotation(1, [10, 10, 0.5, 10], segmentation=outline),  # under 1 px
        annotation(1, [150, 10, 10, 10], segmentation=outline),  # outside
        annotation(1, [math.nan, 10, 5, 10], segmentation=outline),
    ]
    if outline is None:
        for entry in annotations:
            del entry["segmentation"]
    coco = make_coco(tmp_path / "coco.json", [image_entry(1, "a.jpg")], annotations)
    summary = convert_obb(coco, tmp_path / "src", tmp_path / "out", "train", NAMES)
    (cls_a, a), (cls_b, b) = _boxes(tmp_path)
    assert (cls_a, cls_b) == (1, 0)
    assert _same_corners(a, [(10, 5), (30, 5), (30, 15), (10, 15)], 1e-9)
    assert _same_corners(b, [(90, 40), (100, 40), (100, 50), (90, 50)], 1e-9)
    assert (summary.boxes_clipped, summary.boxes_degenerate, summary.boxes_outside) == (1, 2, 1)
    assert summary.class_counts == {"cat": 1, "dog": 1}


def test_bad_shapes_are_counted_drops(tmp_path: Path) -> None:
    """Each of these loses its object, counted in the summary with a reason: no traceback."""
    summary = _obb(
        tmp_path,
        {"size": [10, 10], "counts": [100]},  # another image's size
        {"size": [50, 100], "counts": [5, 10]},  # runs do not cover the image
        {"size": [50, 100], "counts": "\x7f"},
        [[0, 0, 10, 10]],  # fewer than 3 points
        [[10, 5, 30, 5, 50, 5]],  # no area
        [[10, 5, 30, 5, math.nan, 25]],
        [[10, 5, "30", 5, 20, 25]],
        [[10, 5, 30, 5, 20]],  # odd length
        [[]],
        "a polygon",
        [[0, 0, 100, 49.5, 100, 50, 0, 0.6]],  # a sliver under 1 px wide
        [[10, 5, 30, 5, 20, 25]],  # the one good object
    )
    assert len(_boxes(tmp_path)) == 1
    assert (summary.objects_without_shape, summary.parts_degenerate) == (10, 6)
    assert summary.boxes_degenerate == 1
    assert "mask size [10, 10] is not the image's [50, 100]" in str(summary)
    assert "1 degenerate boxes" in str(summary)


def test_crowds_and_unknown_categories_are_dropped_and_counted(tmp_path: Path) -> None:
    triangle = [[10, 5, 30, 5, 20, 25]]
    crowd = _obb(tmp_path, triangle, iscrowd=1)
    assert (crowd.annotations_crowd, crowd.labels_written, crowd.background_images) == (1, 0, 1)
    unknown = _obb(tmp_path, triangle, category_id=5)
    assert (unknown.annotations_unknown_category, unknown.labels_written) == (1, 0)


def test_rectangle_ultralytics_would_reject_is_turned_to_fit(tmp_path: Path) -> None:
    """A thick bar across the whole image: its tightest rectangle reaches 4% past the image's
    width, and ultralytics would drop the whole image for it. The box written instead holds
    every point and passes ultralytics' own label check."""
    from ultralytics.data.utils import verify_image_label

    bar = [0, 0, 10, 0, 100, 45, 100, 50, 90, 50, 0, 5]
    tightest = cv2.boxPoints(cv2.minAreaRect(np.array(bar, np.float32).reshape(-1, 2)))
    assert (tightest.max(0) - tightest.min(0))[0] / 100 > 1.01
    summary = _obb(tmp_path, [bar], [[10, 5, 30, 5, 20, 25]])
    (_, turned), _ = _boxes(tmp_path)
    assert _contains(turned, np.reshape(bar, (-1, 2)))
    assert (turned.max(0) - turned.min(0) <= np.multiply(FRAME, FIT)).all()
    assert summary.boxes_turned == 1
    assert "1 oriented boxes turned to fit the image" in str(summary)
    label = tmp_path / "out" / "labels" / "train" / "a.txt"
    checked = verify_image_label(
        (str(tmp_path / "src" / "a.jpg"), str(label), "", False, 2, 0, 0, False)
    )
    assert checked[-1] == "" and len(checked[1]) == 2  # no message, both labels kept


def _contains(corners: np.ndarray, points: np.ndarray, tolerance: float = 1e-3) -> bool:
    """Whether every point lies in the rectangle (within `tolerance` pixels)."""
    origin, u, v = corners[0], corners[1] - corners[0], corners[3] - corners[0]
    along = (points - origin) @ u / (u @ u)
    across = (points - origin) @ v / (v @ v)
    slack_u, slack_v = tolerance / np.sqrt(u @ u), tolerance / np.sqrt(v @ v)
    return bool(
        ((along >= -slack_u) & (along <= 1 + slack_u)).all()
        and ((across >= -slack_v) & (across <= 1 + slack_v)).all()
    )


def _smallest_upright_area(points: np.ndarray, steps: int = 3600) -> float:
    """The least area of a rectangle holding `points`, over `steps` orientations in [0°, 90°):
    an upper bound on the true minimum, and near it (numpy only, no cv2)."""
    angles = np.linspace(0, np.pi / 2, steps, endpoint=False)
    u = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    v = np.stack([-u[:, 1], u[:, 0]], axis=1)
    along, across = points @ u.T, points @ v.T
    return float(((along.max(0) - along.min(0)) * (across.max(0) - across.min(0))).min())


def test_every_box_holds_its_outline_with_the_least_area(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random polygons (some past the border, some in two parts) over several images and
    batches: each box holds the polygon segmentation would write for the object, and no
    rectangle of any of 3,600 orientations holding it is smaller, unless that one is too wide
    for ultralytics: then the box written fits."""
    monkeypatch.setattr(convert, "BATCH", 2)
    rng = np.random.default_rng(0)
    images, annotations, outlines = [], [], {}
    for i in range(5):
        make_image(tmp_path / "src" / f"{i}.jpg")
        images.append(image_entry(i + 1, f"{i}.jpg"))
        outlines[str(i)] = []
        for _ in range(int(rng.integers(0, 6))):
            centre = rng.uniform([0, 0], FRAME)
            parts = [
                (centre + rng.normal(0, rng.uniform(2, 20), (int(rng.integers(3, 12)), 2)))
                .round(2)
                .ravel()
                .tolist()
                for _ in range(int(rng.integers(1, 3)))
            ]
            annotations.append(annotation(i + 1, None, segmentation=parts))
            polygon = object_shape(parts, *FRAME).polygon
            if polygon is not None:
                outlines[str(i)].append(np.reshape(polygon, (-1, 2)))
    coco = make_coco(tmp_path / "coco.json", images, annotations)
    summary = convert_obb(coco, tmp_path / "src", tmp_path / "out", "train", NAMES)
    checked = turned = 0
    for stem, expected in outlines.items():
        boxes = _boxes(tmp_path, stem)
        assert len(boxes) == len(expected) - _dropped_here(expected)
        for (_, corners), points in zip(boxes, [p for p in expected if _wide(p)], strict=True):
            assert _contains(corners, points)
            sides = np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1)
            if _fits(cv2.boxPoints(cv2.minAreaRect(points.astype(np.float32)))):
                assert sides[0] * sides[1] <= _smallest_upright_area(points) * (1 + 1e-6) + 1e-3
            else:
                assert _fits(corners)
                turned += 1
            checked += 1
    assert checked == summary.labels_written >= 10
    assert turned == summary.boxes_turned


def _fits(corners: np.ndarray) -> bool:
    return bool((corners.max(0) - corners.min(0) <= np.multiply(FRAME, FIT)).all())


def _wide(points: np.ndarray) -> bool:
    """Whether the outline's rectangle is at least 1 px on each side (else it is dropped)."""
    (_, (w, h), _) = cv2.minAreaRect(points.astype(np.float32))
    return min(w, h) >= 1


def _dropped_here(outlines: list[np.ndarray]) -> int:
    return sum(not _wide(points) for points in outlines)


def test_batches_change_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outlines and boxes mixed over several images: batch size 2 and 512 give the same files."""
    objects = [
        {"segmentation": [[10, 5, 30, 5, 20, 25]]},
        {"bbox": [5, 5, 10, 10]},  # `segmentation: null`, as no segmentation
        {"segmentation": [], "bbox": [50, 20, 10, 10]},
        {"segmentation": [[0, 0, 4]]},
        {"segmentation": [[0, 0, 2, 0, 2, 2, 0, 2], [20, 20, 22, 20, 22, 22, 20, 22]]},
    ]
    images, annotations = [], []
    for i in range(4):
        make_image(tmp_path / "src" / f"{i}.jpg")
        images.append(image_entry(i + 1, f"{i}.jpg"))
        annotations += [
            annotation(i + 1, extra.get("bbox"), segmentation=extra.get("segmentation"))
            for extra in objects[i:]
        ]
    coco = make_coco(tmp_path / "coco.json", images, annotations)
    runs = []
    for batch in (2, 512):
        monkeypatch.setattr(convert, "BATCH", batch)
        summary = convert_obb(coco, tmp_path / "src", tmp_path / "out", "train", NAMES)
        runs.append((summary, [read_labels(tmp_path, str(i)) for i in range(4)]))
    assert runs[0] == runs[1]
    summary: ConversionSummary = runs[0][0]
    assert (summary.labels_written, summary.objects_without_shape) == (10, 4)


def test_convert_command_counts_bad_outlines_in_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pictrain convert --task obb`: the good object written, the 2-point polygon and the
    broken mask counted in the summary it prints, exit 0, no traceback."""
    from pictrain.cli import main

    make_image(tmp_path / "src" / "a.jpg")
    segmentations = [[[10, 5, 30, 5, 20, 25]], [[0, 0, 10, 10]], {"size": [1, 1], "counts": "x"}]
    coco = make_coco(
        tmp_path / "coco.json",
        [image_entry(1, "a.jpg")],
        [annotation(1, None, segmentation=s) for s in segmentations],
    )
    arguments = ["convert", "--task", "obb", "--coco", str(coco), "--images", str(tmp_path / "src")]
    with pytest.raises(SystemExit) as exited:
        main([*arguments, "--out", str(tmp_path / "out")])
    printed = capsys.readouterr()
    assert exited.value.code == 0, printed.err
    assert "train: 1 of 1 images written (0 background), 1 oriented boxes" in printed.out
    assert "2 objects without a usable shape" in printed.out
    assert "Traceback" not in printed.out + printed.err
    assert len(_boxes(tmp_path)) == 1
    assert (tmp_path / "out" / "data.yaml").is_file()
