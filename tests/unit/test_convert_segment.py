"""COCO polygons and RLE masks -> YOLO segmentation lines, checked against hand-computed lines.

Images are 100 x 50 unless said otherwise: x is divided by 100, y by 50. Category 3 is "dog",
class 1; category 7 is "cat", class 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask
from test_convert import NAMES, annotation, image_entry, make_coco, make_image, read_labels

from pictrain.data import convert
from pictrain.data.coco import load_coco
from pictrain.data.convert import convert_segmentation
from pictrain.data.polygons import Shape, object_shape, plain_polygons
from pictrain.data.summary import ConversionSummary

SQUARE_A = [0, 0, 10, 0, 10, 10, 0, 10]
SQUARE_B = [20, 8, 30, 8, 30, 18, 20, 18]


def _segment(tmp_path: Path, *segmentations: Any, **extra: Any) -> ConversionSummary:
    """One 100 x 50 image `a.jpg`, one dog object per segmentation."""
    make_image(tmp_path / "src" / "a.jpg")
    annotations = [annotation(1, None, segmentation=s, **extra) for s in segmentations]
    coco = make_coco(tmp_path / "coco.json", [image_entry(1, "a.jpg")], annotations)
    return convert_segmentation(coco, tmp_path / "src", tmp_path / "out", "train", NAMES)


def _line(cls: int, points: list[tuple[float, float]]) -> str:
    return " ".join([str(cls), *(f"{v:.6f}" for point in points for v in point)])


def _rectangle_mask() -> np.ndarray:
    """Pixels x 2..5, y 3..6 of a 100 x 50 image."""
    mask = np.zeros((50, 100), dtype=np.uint8)
    mask[3:7, 2:6] = 1
    return mask


def test_polygon(tmp_path: Path) -> None:
    summary = _segment(tmp_path, [[10, 5, 30, 5, 20, 25]])
    assert read_labels(tmp_path, "a") == ["1 0.100000 0.100000 0.300000 0.100000 0.200000 0.500000"]
    assert (summary.labels_written, summary.background_images) == (1, 0)
    assert str(summary) == "train: 1 of 1 images written (0 background), 1 polygons"


def test_closing_point_and_repeats_are_removed(tmp_path: Path) -> None:
    _segment(tmp_path, [[10, 5, 30, 5, 30, 5, 20, 25, 10, 5]])
    assert read_labels(tmp_path, "a") == ["1 0.100000 0.100000 0.300000 0.100000 0.200000 0.500000"]


def test_multi_part_object_is_one_line_joined_at_the_closest_points(tmp_path: Path) -> None:
    # Closest vertices: A's (10,10) and B's (20,8). The line goes round A to (10,10), over the
    # bridge to (20,8), round B back to (20,8), back over the bridge and on round A.
    summary = _segment(tmp_path, [SQUARE_A, SQUARE_B])
    points = [(0, 0), (10, 0), (10, 10), (20, 8), (30, 8), (30, 18), (20, 18), (20, 8), (10, 10)]
    points.append((0, 10))
    assert read_labels(tmp_path, "a") == [_line(1, [(x / 100, y / 50) for x, y in points])]
    assert (summary.labels_written, summary.objects_merged) == (1, 1)


@pytest.mark.parametrize("compressed", [True, False])
def test_rle_rectangle_becomes_its_four_corners(tmp_path: Path, compressed: bool) -> None:
    if compressed:
        rle = coco_mask.encode(np.asfortranarray(_rectangle_mask()))
        counts: Any = rle["counts"].decode()
    else:  # column by column: 2 empty columns + 3 rows, then 4 on, 46 off... , then the rest
        counts = [103, 4, 46, 4, 46, 4, 46, 4, 4743]
    summary = _segment(tmp_path, {"size": [50, 100], "counts": counts})
    # contour through the boundary pixels: x 2 and 5, y 3 and 6
    assert read_labels(tmp_path, "a") == [
        _line(1, [(0.02, 0.06), (0.02, 0.12), (0.05, 0.12), (0.05, 0.06)])
    ]
    assert (summary.labels_written, summary.holes_filled) == (1, 0)


def test_ring_mask_keeps_its_outer_contour_and_counts_the_hole(tmp_path: Path) -> None:
    mask = np.zeros((50, 100), dtype=np.uint8)
    mask[10:40, 10:40] = 1
    mask[20:30, 20:30] = 0
    rle = coco_mask.encode(np.asfortranarray(mask))
    summary = _segment(tmp_path, {"size": [50, 100], "counts": rle["counts"].decode()})
    assert read_labels(tmp_path, "a") == [
        _line(1, [(0.1, 0.2), (0.1, 0.78), (0.39, 0.78), (0.39, 0.2)])
    ]
    assert summary.holes_filled == 1
    assert "1 mask holes filled" in str(summary)


def test_degenerate_parts_are_dropped(tmp_path: Path) -> None:
    summary = _segment(
        tmp_path,
        [[0, 0, 10, 10]],  # two points
        [[0, 0, 10, 0, 20, 0]],  # zero area
        [[10, 5, 30, 5, 20, 25], [1, 2, 3]],  # a good part and a malformed one
    )
    assert read_labels(tmp_path, "a") == ["1 0.100000 0.100000 0.300000 0.100000 0.200000 0.500000"]
    assert (summary.parts_degenerate, summary.objects_without_shape) == (3, 2)
    assert (summary.labels_written, summary.objects_merged) == (1, 0)


def test_points_outside_the_image_are_clipped(tmp_path: Path) -> None:
    summary = _segment(
        tmp_path,
        [[-10, -5, 50, -5, 50, 60]],  # -> (0,0) (50,0) (50,50)
        [[110, 0, 120, 0, 120, 10]],  # all on x = 100 once clipped: zero area
    )
    assert read_labels(tmp_path, "a") == [_line(1, [(0, 0), (0.5, 0), (0.5, 1)])]
    assert (summary.polygons_clipped, summary.parts_degenerate) == (1, 1)
    assert summary.objects_without_shape == 1


def test_unusable_segmentations_are_counted_with_examples(tmp_path: Path) -> None:
    good = {"size": [50, 100], "counts": [103, 4, 46, 4, 46, 4, 46, 4, 4743]}
    summary = _segment(
        tmp_path,
        None,  # no segmentation
        {"size": [10, 10], "counts": [100]},  # another image's size
        {"size": [50, 100], "counts": [5, 10]},  # runs do not cover the image
        {"size": [50, 100], "counts": "\x7f"},  # not a counts string
    )
    assert read_labels(tmp_path, "a") == []
    assert (summary.objects_without_shape, summary.background_images) == (4, 1)
    assert "mask size [10, 10] is not the image's [50, 100]" in str(summary)
    crowd = _segment(tmp_path, good, iscrowd=1)
    assert (crowd.annotations_crowd, crowd.labels_written) == (1, 0)


def test_exif_rotated_image_keeps_the_displayed_frame(tmp_path: Path) -> None:
    # Stored 60 x 40 with orientation 6: displayed (and annotated) 40 x 60.
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "src").mkdir()
    Image.new("RGB", (60, 40), "gray").save(tmp_path / "src" / "r.jpg", exif=exif)
    coco = make_coco(
        tmp_path / "coco.json",
        [image_entry(1, "r.jpg", width=40, height=60)],
        [annotation(1, None, segmentation=[[0, 0, 40, 0, 20, 30]])],
    )
    summary = convert_segmentation(coco, tmp_path / "src", tmp_path / "out", "train", NAMES)
    assert read_labels(tmp_path, "r") == [_line(1, [(0, 0), (1, 0), (0.5, 0.5)])]
    with Image.open(tmp_path / "out" / "images" / "train" / "r.jpg") as image:
        assert image.size == (40, 60)
    assert summary.images_rotated == 1


def test_index_loaded_without_segmentation_is_refused(tmp_path: Path) -> None:
    coco = make_coco(tmp_path / "coco.json", [image_entry(1, "a.jpg")], [])
    with pytest.raises(ValueError, match="without keeping segmentation"):
        convert_segmentation(load_coco(coco), tmp_path, tmp_path / "out", "train", NAMES)


def _tricky_segmentations(rng: np.random.Generator) -> list[Any]:
    """Polygons of every kind `object_shape` has a rule for, on a 100 x 50 image."""
    ring = [10.5, 5.25, 30, 5, 20.75, 25, 12, 20]
    return [
        ring,
        [float(v) for v in ring],
        ring[:6],
        ring + ring[:2],  # closing point
        ring[:4] + ring[2:],  # repeated point
        [v + 90 for v in ring],  # partly outside
        [0, 5, 30, 5, 20, 25],  # on the border: clipped to the same place
        [100, 10, 100, 20, 90, 20],  # on the right border: inside
        [10, 5, 20, 5, 30, 5],  # zero area
        [10, 5, 10 + 1e-6, 5, 10, 5 + 1e-6],  # tiny area
        ring[:5],  # odd length
        [10, 5, float("nan"), 5, 20, 25],
        [10, 5, True, 5, 20, 25],
        [10, 5, "30", 5, 20, 25],
        [10, 5, 10**400, 5, 20, 25],
        *(rng.uniform(-5, 105, 2 * int(rng.integers(3, 30))).round(2).tolist() for _ in range(40)),
    ]


def test_plain_polygons_are_exactly_what_object_shape_keeps_unchanged() -> None:
    rng = np.random.default_rng(0)
    parts = _tricky_segmentations(rng)
    segmentations = [[part] for part in parts] + [[parts[0], parts[1]], [], None, parts[0]]
    frames = np.tile([100.0, 50.0], (len(segmentations), 1))
    points, plain = plain_polygons(segmentations, frames)
    assert plain[:2] == [True, True]  # the common case takes the fast path
    offset = 0
    for segmentation, as_written in zip(segmentations, plain, strict=True):
        shape = object_shape(segmentation, 100, 50)
        unchanged = shape.polygon is not None and shape == Shape(segmentation[0], 1)
        assert as_written == unchanged, segmentation
        if as_written:
            size = len(segmentation[0]) // 2
            assert points[offset : offset + size].ravel().tolist() == shape.polygon
        if type(segmentation) is list and len(segmentation) == 1 and len(segmentation[0]) >= 6:
            offset += len(segmentation[0]) // 2 * (not len(segmentation[0]) % 2)


def test_images_in_batches_get_each_object_by_its_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain and other objects mixed over several batches: every line as `object_shape` and
    `%.6f` make it, and every count."""
    monkeypatch.setattr(convert, "BATCH", 2)
    rng = np.random.default_rng(1)
    parts = _tricky_segmentations(rng)
    good_rle = {"size": [50, 100], "counts": [103, 4, 46, 4, 46, 4, 46, 4, 4743]}
    objects = [[part] for part in parts] + [[SQUARE_A, SQUARE_B], good_rle, None]
    images, annotations, expected = [], [], {}
    for i in range(5):
        make_image(tmp_path / "src" / f"{i}.jpg")
        images.append(image_entry(i + 1, f"{i}.jpg"))
        lines = []
        for segmentation in objects[i::5]:
            annotations.append(annotation(i + 1, None, segmentation=segmentation))
            polygon = object_shape(segmentation, 100, 50).polygon
            if polygon is not None:
                xy = [v / (100, 50)[k % 2] for k, v in enumerate(polygon)]
                lines.append(" ".join(["1", *(f"{v:.6f}" for v in xy)]))
        expected[str(i)] = lines
    coco = make_coco(tmp_path / "coco.json", images, annotations)
    summary = convert_segmentation(coco, tmp_path / "src", tmp_path / "out", "train", NAMES)
    assert {stem: read_labels(tmp_path, stem) for stem in expected} == expected
    shapes = [object_shape(s, 100, 50) for s in objects]
    assert summary.labels_written == sum(shape.polygon is not None for shape in shapes)
    assert summary.polygons_clipped == sum(shape.clipped for shape in shapes if shape.polygon)
    assert summary.parts_degenerate == sum(shape.parts_dropped for shape in shapes)
    assert summary.objects_merged == 1
    assert summary.background_images == sum(not lines for lines in expected.values())
