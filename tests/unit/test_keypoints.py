"""Pose conversion: COCO keypoints -> ultralytics pose labels, and the rules that fix Picsellia's
KEYPOINT export (hull boxes, area 1.0, skeletons per label), on hand-written COCO files."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from pictrain.data.coco import load_coco
from pictrain.data.convert import convert_pose, write_data_yaml
from pictrain.data.keypoints import (
    AREA_PER_BOX,
    COCO_SIGMAS,
    PoseOptions,
    flip_idx_from_names,
    resolve_layout,
)
from pictrain.data.labels import labelmap_from
from pictrain.errors import UserError
from pictrain.evaluate.ground_truth import build_ground_truth

COCO_NAMES = [
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
]
POINTS = ["head", "left_hand", "right_hand"]
SKELETON = [[1, 2], [1, 3]]
WIDTH, HEIGHT = 200, 100


def category(category_id: int, name: str, points=POINTS, skeleton=SKELETON) -> dict[str, Any]:
    return {"id": category_id, "name": name, "keypoints": points, "skeleton": skeleton}


def pose(
    image_id: int, keypoints: list[float], bbox: list[float] | None, category_id: int = 1, **extra
) -> dict[str, Any]:
    entry = {"image_id": image_id, "category_id": category_id, "keypoints": keypoints, **extra}
    return entry if bbox is None else {**entry, "bbox": bbox}


def write_split(
    folder: Path,
    annotations: list[dict[str, Any]],
    categories: list[dict[str, Any]],
    images: int = 1,
) -> Path:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    entries = []
    for image_id in range(1, images + 1):
        name = f"{image_id}.jpg"
        Image.new("RGB", (WIDTH, HEIGHT), "gray").save(folder / "images" / name)
        entries.append({"id": image_id, "file_name": name, "width": WIDTH, "height": HEIGHT})
    for k, annotation in enumerate(annotations, 1):
        annotation.setdefault("id", k)
    coco = folder / "annotations.json"
    document = {"images": entries, "annotations": annotations, "categories": categories}
    coco.write_text(json.dumps(document))
    return coco


def convert(tmp_path: Path, annotations, categories=None, options=None, images=1):
    coco = write_split(tmp_path / "src", annotations, categories or [category(1, "person")], images)
    index = load_coco(coco, keep=frozenset({"keypoints"}))
    names = labelmap_from([index])
    layout = resolve_layout([index], names, options or PoseOptions())
    summary = convert_pose(
        index, tmp_path / "src" / "images", tmp_path / "out", "train", names, layout
    )
    return summary, index, layout


def rows(tmp_path: Path, stem: str = "1") -> list[list[float]]:
    text = (tmp_path / "out" / "labels" / "train" / f"{stem}.txt").read_text()
    return [[float(v) for v in line.split()] for line in text.splitlines()]


# --- agreement with ultralytics' own converter, where it is right --------------------------------


def test_labels_equal_ultralytics_convert_coco_on_a_correct_coco_keypoints_file(tmp_path):
    """A file with real boxes (not the points' hull), every labelled point inside its image,
    unlabelled points as 0, 0, 0, contiguous category ids: ultralytics' converter is right
    there, and our lines are its lines (it prints 6 significant digits, we 6 decimals)."""
    from ultralytics.data.converter import convert_coco

    rng = np.random.default_rng(3)
    annotations = []
    for image_id in (1, 2, 3):
        for _ in range(3):
            x, y = rng.uniform(0, 100, 2).round(2)
            w, h = rng.uniform(30, 90, 2).round(2)
            w, h = min(w, WIDTH - x), min(h, HEIGHT - y)
            keypoints = []
            for k in range(len(COCO_NAMES)):
                v = [0, 1, 2][k % 3] if image_id != 2 else 2
                px, py = (
                    (rng.uniform(x + 2, x + w - 2), rng.uniform(y + 2, y + h - 2)) if v else (0, 0)
                )
                keypoints += [round(float(px), 2), round(float(py), 2), v]
            annotations.append(
                pose(
                    image_id,
                    keypoints,
                    [float(x), float(y), float(w), float(h)],
                    int(rng.integers(1, 3)),
                )
            )
    annotations.append(pose(3, [0, 0, 0] * len(COCO_NAMES), [5, 5, 20, 20]))  # nothing labelled
    annotations.append(pose(3, annotations[0]["keypoints"], [5, 5, 20, 20], iscrowd=1))
    categories = [category(1, "person", COCO_NAMES, []), category(2, "statue", COCO_NAMES, [])]
    summary, _, _ = convert(tmp_path, annotations, categories, images=3)
    assert summary.poses_without_points == 1 and summary.annotations_crowd == 1
    assert summary.boxes_from_points == 0 and summary.labels_written == 9
    theirs = tmp_path / "theirs"
    convert_coco(str(tmp_path / "src"), str(theirs), use_keypoints=True, cls91to80=False)
    for stem in ("1", "2", "3"):
        lines = (theirs / "labels" / "annotations" / f"{stem}.txt").read_text().splitlines()
        expected = [[float(v) for v in line.split()] for line in lines]
        ours = rows(tmp_path, stem)
        assert len(ours) == len(expected) == 3
        np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-6)


# --- Picsellia's KEYPOINT export ---------------------------------------------------------------


def test_a_hull_box_is_padded_and_its_area_recomputed(tmp_path):
    """Picsellia's bbox is the hull of the points whose v is not 0 (v 1 counts): it is grown by
    keypoint_box_padding of its size on each side; the area 1.0 is recomputed for scoring."""
    points = [100, 40, 2, 80, 60, 1, 120, 70, 2]  # hull x 80..120, y 40..70
    summary, index, layout = convert(
        tmp_path, [pose(1, points, [80, 40, 40, 30], area=1.0)], options=PoseOptions(0.25)
    )
    # padded by 10 px (x) and 7.5 px (y): x 70..130, y 32.5..77.5
    assert rows(tmp_path) == [[0, 0.5, 0.55, 0.3, 0.45, 0.5, 0.4, 2, 0.4, 0.6, 1, 0.6, 0.7, 2]]
    assert (summary.boxes_from_points, summary.areas_recomputed) == (1, 1)
    assert "boxes made from the labelled keypoints, padded" in summary.fixed()
    truth = build_ground_truth(
        index, {1: "1.jpg"}, tmp_path / "src" / "images", ["person"], ("bbox", "keypoints"), layout
    )
    (entry,) = truth.datasets["keypoints"]["annotations"]
    assert entry["bbox"] == [70, 32.5, 60, 45]
    assert entry["area"] == pytest.approx(60 * 45 * AREA_PER_BOX)
    assert entry["keypoints"] == [float(v) for v in points] and entry["num_keypoints"] == 3
    assert truth.datasets["bbox"]["annotations"][0]["bbox"] == [70, 32.5, 60, 45]


def test_an_object_without_a_box_is_trained_on_its_padded_hull(tmp_path):
    """An annotation tool's COCO keypoints without `bbox`: the box is made from the points as
    for Picsellia's hull, and the object is trained as it is scored (not dropped as boxless)."""
    points = [100, 40, 2, 80, 60, 1, 120, 70, 2]
    summary, index, layout = convert(tmp_path, [pose(1, points, None)], options=PoseOptions(0.25))
    assert rows(tmp_path) == [[0, 0.5, 0.55, 0.3, 0.45, 0.5, 0.4, 2, 0.4, 0.6, 1, 0.6, 0.7, 2]]
    assert (summary.boxes_from_points, summary.boxes_missing) == (1, 0)
    truth = build_ground_truth(
        index, {1: "1.jpg"}, tmp_path / "src" / "images", ["person"], ("bbox", "keypoints"), layout
    )
    assert truth.datasets["bbox"]["annotations"][0]["bbox"] == [70, 32.5, 60, 45]


def test_a_padded_hull_stays_inside_the_image(tmp_path):
    convert(tmp_path, [pose(1, [0, 0, 2, 50, 100, 2, 10, 10, 2], [0, 0, 50, 100])])
    cx, cy, w, h = rows(tmp_path)[0][1:5]
    assert (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2) == pytest.approx((0, 0, 0.275, 1))


@pytest.mark.parametrize(
    ("keypoints", "counter"),
    [
        ([10, 10, 2, 20, 20, 3, 30, 30, 2], "keypoints_bad_visibility"),
        ([10, 10, 2, 20, 20, -1, 30, 30, 2], "keypoints_bad_visibility"),
        ([10, 10, 2, 20, 20], "keypoints_malformed"),
        ([10, 10, 2, 20, "20", 2, 30, 30, 2], "keypoints_malformed"),
        ([10, 10, 2, None, 20, 2, 30, 30, 2], "keypoints_malformed"),
        ([10, 10, True, 20, 20, 2, 30, 30, 2], "keypoints_malformed"),
        ([0, 0, 0, 0, 0, 0, 0, 0, 0], "poses_without_points"),
        ([300, 10, 2, 10, -50, 2, 0, 0, 0], "poses_without_points"),
    ],
)
def test_unusable_keypoints_drop_their_object_counted(tmp_path, keypoints, counter):
    good = pose(1, [50, 50, 2, 60, 60, 2, 70, 55, 2], [40, 40, 40, 30])
    bad = pose(1, keypoints, [math.inf, math.inf, -math.inf, -math.inf])  # as the SDK writes it
    summary, _, _ = convert(tmp_path, [good, bad])
    assert getattr(summary, counter) == 1
    assert summary.labels_written == 1 and len(rows(tmp_path)) == 1
    assert "Traceback" not in str(summary)


def test_keypoints_outside_the_image_are_made_unlabelled_and_counted(tmp_path):
    points = [50, 50, 2, 260, 50, 2, 70, 60, 1, 200.0005, 20, 2]  # the last: on the border
    categories = [category(1, "person", ["a", "b", "c", "d"], [])]
    summary, _, _ = convert(tmp_path, [pose(1, points, [50, 20, 210, 40])], categories)
    assert summary.keypoints_outside == 1
    (line,) = rows(tmp_path)
    assert line[5:] == pytest.approx([0.25, 0.5, 2, 0, 0, 0, 0.35, 0.6, 1, 1.0, 0.2, 2])


def test_multi_rectangles_hold_their_keypoints(tmp_path):
    """MULTI: each object's box is the smallest same-label rectangle holding its labelled
    points; a rectangle no keypoints went with is a box of unlabelled points."""
    categories = [category(1, "person"), {"id": 2, "name": "car"}]
    annotations = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 100, 80], "area": 8000.0},
        {"image_id": 1, "category_id": 1, "bbox": [20, 20, 40, 40], "area": 1600.0},
        {"image_id": 1, "category_id": 2, "bbox": [0, 0, 200, 100], "area": 20000.0},
        {"image_id": 1, "category_id": 1, "bbox": [150, 10, 30, 30], "area": 900.0},
        pose(1, [30, 30, 2, 50, 50, 2, 0, 0, 0], [30, 30, 20, 20], area=1.0),
        pose(1, [80, 70, 2, 100, 20, 2, 60, 40, 2], [60, 20, 40, 50], area=1.0),
    ]
    summary, index, layout = convert(tmp_path, annotations, categories)
    assert (summary.boxes_from_rectangles, summary.boxes_without_keypoints) == (2, 2)
    assert summary.boxes_from_points == 0
    lines = rows(tmp_path)
    # the first object takes the 40 x 40 rectangle, the second the only one left holding it
    assert lines[0][:5] == pytest.approx([1, 0.2, 0.4, 0.2, 0.4])
    assert lines[1][:5] == pytest.approx([1, 0.3, 0.5, 0.5, 0.8])
    assert sorted(line[0] for line in lines[2:]) == [0, 1]  # the car, the lone rectangle
    assert all(v == 0 for line in lines[2:] for v in line[5:])
    truth = build_ground_truth(
        index,
        {1: "1.jpg"},
        tmp_path / "src" / "images",
        ["car", "person"],
        ("bbox", "keypoints"),
        layout,
    )
    scored = [a for a in truth.datasets["keypoints"]["annotations"] if a["num_keypoints"]]
    assert [a["area"] for a in scored] == pytest.approx([1600 * AREA_PER_BOX, 8000 * AREA_PER_BOX])


def test_a_real_box_and_area_are_kept(tmp_path):
    points = [100, 40, 2, 80, 60, 2, 120, 70, 2]
    summary, index, layout = convert(tmp_path, [pose(1, points, [60, 20, 90, 70], area=3000.0)])
    assert summary.boxes_from_points == summary.areas_recomputed == 0
    truth = build_ground_truth(
        index, {1: "1.jpg"}, tmp_path / "src" / "images", ["person"], ("bbox", "keypoints"), layout
    )
    (entry,) = truth.datasets["keypoints"]["annotations"]
    assert (entry["bbox"], entry["area"]) == ([60, 20, 90, 70], 3000.0)


def test_the_boxes_alone_are_built_when_only_they_are_asked(tmp_path):
    """The operating point matches a pose model by its boxes (`TaskSpec.operating_iou`): the
    val split's ground truth is built for "bbox" only."""
    points = [100, 40, 2, 80, 60, 2, 120, 70, 2]
    _, index, layout = convert(tmp_path, [pose(1, points, [60, 20, 90, 70], area=3000.0)])
    truth = build_ground_truth(
        index, {1: "1.jpg"}, tmp_path / "src" / "images", ["person"], ("bbox",), layout
    )
    assert list(truth.datasets) == ["bbox"]
    (entry,) = truth.datasets["bbox"]["annotations"]
    assert entry["bbox"] == [60, 20, 90, 70] and "keypoints" not in entry


# --- one point layout per dataset --------------------------------------------------------------


def test_labels_without_a_skeleton_fail_clearly(tmp_path):
    with pytest.raises(UserError, match="no label has a skeleton"):
        convert(
            tmp_path, [pose(1, [1, 1, 2, 2, 2, 2, 3, 3, 2], None)], [{"id": 1, "name": "person"}]
        )


def test_labels_that_disagree_on_their_number_of_points_fail_naming_them(tmp_path):
    categories = [category(1, "person"), category(2, "hand", ["a", "b"], [[1, 2]])]
    with pytest.raises(UserError, match=r"hand \(2\), person \(3\)"):
        convert(tmp_path, [pose(1, [1, 1, 2, 2, 2, 2, 3, 3, 2], None)], categories)


def test_a_skeleton_that_is_no_list_of_edges_fails(tmp_path):
    coco = write_split(tmp_path, [], [category(1, "person", POINTS, [[1, 4]])])
    with pytest.raises(UserError, match="pairs of vertex numbers from 1 to 3"):
        load_coco(coco)


def test_flip_idx_from_left_and_right_names():
    assert flip_idx_from_names(COCO_NAMES) == (
        0,
        2,
        1,
        4,
        3,
        6,
        5,
        8,
        7,
        10,
        9,
        12,
        11,
        14,
        13,
        16,
        15,
    )
    assert flip_idx_from_names(["Left-Hand", "tail", "RIGHT-hand"]) == (2, 1, 0)
    assert flip_idx_from_names(["left_hand", "tail"]) is None  # its right side is missing
    assert flip_idx_from_names(["head", "tail"]) is None  # nothing to swap


def test_without_flip_idx_flips_are_turned_off_with_a_warning(tmp_path, caplog):
    categories = [category(1, "thing", ["a", "b", "c"], [])]
    with caplog.at_level(logging.WARNING):
        _, _, layout = convert(tmp_path, [pose(1, [1, 1, 2, 2, 2, 2, 3, 3, 2], None)], categories)
    assert layout.flip_idx is None
    assert "flips are turned off" in caplog.text and "flip_idx" in caplog.text
    data = yaml.safe_load(
        write_data_yaml(tmp_path / "out", ["thing"], ["train"], layout).read_text()
    )
    assert "flip_idx" not in data and data["kpt_shape"] == [3, 3]


def test_flip_idx_and_sigmas_from_parameters(tmp_path):
    options = PoseOptions(flip_idx=(0, 2, 1), sigmas=(0.1, 0.2, 0.3))
    _, _, layout = convert(tmp_path, [pose(1, [1, 1, 2, 2, 2, 2, 3, 3, 2], None)], options=options)
    data = yaml.safe_load(
        write_data_yaml(tmp_path / "out", ["person"], ["train"], layout).read_text()
    )
    assert data["flip_idx"] == [0, 2, 1] and data["kpt_oks_sigmas"] == [0.1, 0.2, 0.3]
    assert data["kpt_names"] == {0: POINTS}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (PoseOptions(flip_idx=(0, 1)), "flip_idx"),
        (PoseOptions(flip_idx=(1, 2, 0)), "pairs that swap"),
        (PoseOptions(sigmas=(0.1,) * 4), "kpt_oks_sigmas has 4 values: the keypoints are 3"),
    ],
)
def test_pose_parameters_that_do_not_fit_the_layout_fail(tmp_path, options, message):
    with pytest.raises(UserError, match=message):
        convert(tmp_path, [pose(1, [1, 1, 2, 2, 2, 2, 3, 3, 2], None)], options=options)


def test_default_sigmas_are_cocos_for_17_points_else_uniform(tmp_path):
    categories = [category(1, "person", COCO_NAMES, [])]
    _, _, layout = convert(tmp_path / "a", [], categories)
    assert layout.sigmas == COCO_SIGMAS and len(COCO_SIGMAS) == 17
    _, _, layout = convert(tmp_path / "b", [])
    assert layout.sigmas == (1 / 3,) * 3
