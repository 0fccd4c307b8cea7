"""The synthetic shapes datasets: deterministic, valid COCO, convert without a single fix."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from pictrain.data.convert import (
    convert_classification,
    convert_detection,
    convert_obb,
    convert_pose,
    convert_segmentation,
)
from pictrain.data.labels import labelmap_from
from pictrain.synthetic import (
    BAR_LENGTH,
    BAR_WIDTH,
    DATASET_MAKERS,
    POSE_POINTS,
    RLE_EVERY,
    make_classification_dataset,
    make_detection_dataset,
    make_obb_dataset,
    make_pose_dataset,
    make_segmentation_dataset,
    split_counts,
)

REPO = Path(__file__).resolve().parents[2]


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("make", DATASET_MAKERS.values(), ids=list(DATASET_MAKERS))
def test_same_seed_same_bytes(tmp_path: Path, make: Callable[..., dict[str, Path]]) -> None:
    splits = {"train": 3, "val": 1}
    make(tmp_path / "a", 8, 64, seed=5, splits=splits)
    make(tmp_path / "b", 8, 64, seed=5, splits=splits)
    make(tmp_path / "c", 8, 64, seed=6, splits=splits)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c")


def test_valid_coco_with_sparse_ids(tmp_path: Path) -> None:
    files = make_detection_dataset(
        tmp_path, 10, 96, seed=0, splits={"train": 8, "val": 1, "test": 1}
    )
    assert {name: len(json.loads(f.read_text())["images"]) for name, f in files.items()} == {
        "train": 8,
        "val": 1,
        "test": 1,
    }
    coco = COCO(str(files["train"]))
    assert sorted(coco.getCatIds()) == [3, 7, 12]
    assert {cat["name"] for cat in coco.loadCats(coco.getCatIds())} == {
        "circle",
        "square",
        "triangle",
    }
    for image in coco.loadImgs(coco.getImgIds()):
        path = tmp_path / "train" / "images" / image["file_name"]
        with Image.open(path) as picture:
            assert picture.format == "JPEG" and picture.size == (96, 96)
        boxes = [a["bbox"] for a in coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))]
        assert 1 <= len(boxes) <= 4
        for x, y, w, h in boxes:
            assert x >= 0 and y >= 0 and x + w <= 96 and y + h <= 96 and w >= 17
    # the same names get other ids in the next split: labels must be mapped by name
    val = json.loads(files["val"].read_text())["categories"]
    train = json.loads(files["train"].read_text())["categories"]
    assert {c["name"]: c["id"] for c in val} != {c["name"]: c["id"] for c in train}


def test_converts_without_any_fix_or_drop(tmp_path: Path) -> None:
    files = make_detection_dataset(tmp_path / "data", 6, 64, seed=2, splits={"train": 1, "val": 1})
    names = labelmap_from(files.values())
    assert names == ["circle", "square", "triangle"]
    for split, coco in files.items():
        summary = convert_detection(coco, coco.parent / "images", tmp_path / "yolo", split, names)
        assert str(summary).count("\n") == 0, str(summary)  # one line: nothing fixed or dropped
        assert summary.images_written == 3 and summary.labels_written >= 3


def test_segmentation_has_polygons_and_rle_masks_and_converts_cleanly(tmp_path: Path) -> None:
    files = make_segmentation_dataset(tmp_path / "data", 10, 64, seed=3, splits={"train": 1})
    coco = json.loads(files["train"].read_text())
    kinds = {type(a["segmentation"]).__name__ for a in coco["annotations"]}
    assert kinds == {"list", "dict"}
    masks = [a for a in coco["annotations"] if isinstance(a["segmentation"], dict)]
    assert all(a["id"] % RLE_EVERY == 0 and a["iscrowd"] == 0 for a in masks)
    names = labelmap_from(files.values())
    summary = convert_segmentation(
        files["train"], tmp_path / "data" / "train" / "images", tmp_path / "yolo", "train", names
    )
    assert str(summary).count("\n") == 0, str(summary)  # one line: nothing fixed or dropped
    assert summary.labels_written == len(coco["annotations"])


def test_classification_has_one_labelled_shape_per_image(tmp_path: Path) -> None:
    files = make_classification_dataset(tmp_path / "data", 24, 64, seed=0)
    coco = COCO(str(files["train"]))
    for image_id in coco.getImgIds():
        (entry,) = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        x, y, w, h = entry["bbox"]
        assert w == h >= 22 and x + w <= 64 and y + h <= 64
    names = labelmap_from(files.values())
    summary = convert_classification(
        files["train"], tmp_path / "data" / "train" / "images", tmp_path / "cls", "train", names
    )
    assert str(summary).count("\n") == 0, str(summary)  # nothing dropped, no empty class
    assert summary.images_written == 24


def test_pose_is_a_picsellia_keypoint_export_whose_only_fixes_are_its_traps(tmp_path: Path):
    """Hull boxes and area 1.0 as Picsellia writes them, the skeleton in every category: the
    conversion pads every box and recomputes every area, and fixes or drops nothing else."""
    files = make_pose_dataset(tmp_path / "data", 12, 64, seed=1, splits={"train": 1})
    coco = json.loads(files["train"].read_text())
    assert all(c["keypoints"] == list(POSE_POINTS) for c in coco["categories"])
    for a in coco["annotations"]:
        xs, ys, vs = a["keypoints"][0::3], a["keypoints"][1::3], a["keypoints"][2::3]
        assert a["bbox"] == [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        assert a["area"] == 1.0 and set(vs) <= {1, 2}
    assert any(1 in a["keypoints"][2::3] for a in coco["annotations"])  # some occluded
    names = labelmap_from(files.values())
    summary = convert_pose(
        files["train"], tmp_path / "data" / "train" / "images", tmp_path / "yolo", "train", names
    )
    objects = len(coco["annotations"])
    assert (
        summary.labels_written == summary.boxes_from_points == summary.areas_recomputed == objects
    )
    assert set(summary.fixed()) == {
        "boxes made from the labelled keypoints, padded",
        "object areas recomputed from the box (none, or 1.0)",
    }
    assert not summary.dropped()


def test_obb_bars_are_their_own_rotated_boxes_and_convert_cleanly(tmp_path: Path) -> None:
    """Each bar's label is its own 4 corners (its minimum-area rectangle), at many angles."""
    files = make_obb_dataset(tmp_path / "data", 20, 64, seed=4, splits={"train": 1})
    coco = json.loads(files["train"].read_text())
    names = labelmap_from(files.values())
    assert names == ["blue-bar", "green-bar", "red-bar"]
    summary = convert_obb(
        files["train"], tmp_path / "data" / "train" / "images", tmp_path / "yolo", "train", names
    )
    assert str(summary).count("\n") == 0, str(summary)  # one line: nothing fixed or dropped
    assert summary.labels_written == len(coco["annotations"])
    angles = set()
    for annotation in coco["annotations"]:
        corners = np.reshape(annotation["segmentation"][0], (4, 2))
        sides = np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1)
        assert sides[0] / sides[1] == pytest.approx(BAR_LENGTH / BAR_WIDTH, rel=0.01)
        x, y, w, h = annotation["bbox"]
        assert (x, y) == pytest.approx(corners.min(0), abs=0.01)
        assert x >= 0 and y >= 0 and x + w <= 64 and y + h <= 64
        dx, dy = corners[1] - corners[0]
        angles.add(round(np.degrees(np.arctan2(dy, dx)) % 180 // 30))
    assert len(angles) >= 4


def test_split_counts() -> None:
    assert split_counts(200, {"train": 80, "val": 10, "test": 10}) == {
        "train": 160,
        "val": 20,
        "test": 20,
    }
    assert sum(split_counts(7, {"train": 1, "val": 1, "test": 1}).values()) == 7
    with pytest.raises(ValueError, match="no image for split"):
        split_counts(2, {"train": 8, "val": 1, "test": 1})
    with pytest.raises(ValueError, match="unknown split name"):
        split_counts(10, {"holdout": 1})


@pytest.mark.parametrize("task", ["detect", "classify", "pose", "obb"])
def test_script(tmp_path: Path, task: str) -> None:
    script = REPO / "scripts" / "make_synthetic_coco.py"
    options = ["--n-images", "4", "--image-size", "64", "--splits", "train=3,valid=1"]
    options += ["--task", task]
    result = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path), *options],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "valid:" in result.stdout
    assert (tmp_path / "valid" / "annotations.json").is_file()
