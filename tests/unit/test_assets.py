"""Fetching a dataset version with the real SDK against the emulator: assets by id, the COCO
export keyed by asset id and batched, never-annotated assets kept, downloads checked."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from pictrain.errors import PlatformError
from pictrain.platform.assets import UNKNOWN_ID, fetch_split, merge_exports
from pictrain.platform.retry import RetryPolicy
from tests.emulator import Emulator
from tests.emulator.dataset_dir import read_dataset_dir, write_same_name_split

POLICY = RetryPolicy(base_delay=0.01)
DATA_GETS = ("GET", re.compile(r"^/_storage/object/data/"))


def call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    return POLICY.call(what, fn, *args, **kwargs)


def version_of(emu: Emulator, splits: dict[str, tuple[Path, Path]], alias: str) -> Any:
    ids = emu.seed_experiment(splits)
    return emu.client().get_experiment_by_id(ids.experiment_id).get_dataset(alias)


def fetch(version: Any, folder: Path, **kwargs: Any) -> tuple[dict[str, Any], Path]:
    fetched = fetch_split(call, POLICY, "test", version, folder, **kwargs)
    return json.loads(fetched.split.coco_file.read_text()), fetched.split.images_dir


def boxes_by_file(coco: dict[str, Any]) -> dict[str, list[tuple[str, list[int]]]]:
    names = {c["id"]: c["name"] for c in coco["categories"]}
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    found: dict[str, list[tuple[str, list[int]]]] = {name: [] for name in files.values()}
    for a in coco["annotations"]:
        found[files[a["image_id"]]].append((names[a["category_id"]], a["bbox"]))
    return found


def test_assets_of_one_file_name_keep_their_own_pixels_and_labels(
    emulator: Emulator, tmp_path: Path
) -> None:
    split = write_same_name_split(tmp_path / "source")
    version = version_of(emulator, {"test": split}, "test")
    coco, images = fetch(version, tmp_path / "fetched")
    same = version.list_assets(filenames=["same.png"])
    assert len(same) == 2
    source = tmp_path / "source/images"
    expected = {"left": ("cat", [2, 2, 10, 8]), "right": ("dog", [12, 6, 9, 12])}
    boxes = boxes_by_file(coco)
    for asset in same:
        pixels = (images / asset.id_with_extension).read_bytes()
        side = next(s for s in expected if pixels == (source / s / "same.png").read_bytes())
        assert boxes[asset.id_with_extension] == [expected[side]], side
    assert len({image["file_name"] for image in coco["images"]}) == len(coco["images"]) == 3


def test_never_annotated_assets_are_kept_as_images_without_objects(
    emulator: Emulator, sample_dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    splits, _ = read_dataset_dir(sample_dataset)
    version = version_of(emulator, splits, "test")
    with caplog.at_level(logging.INFO, logger="pictrain"):
        coco, images = fetch(version, tmp_path / "fetched")
    boxes = boxes_by_file(coco)
    assert len(boxes) == 4 and sorted(len(b) for b in boxes.values()) == [0, 1, 1, 1]
    background = next(name for name, found in boxes.items() if not found)
    assert (images / background).read_bytes() == (
        sample_dataset / "test/images/test_background.png"
    ).read_bytes()
    assert "test: 1 of 4 assets were never annotated" in caplog.text


def test_large_versions_are_exported_in_batches_of_asset_ids_and_merged(
    emulator: Emulator, sample_dataset: Path, tmp_path: Path
) -> None:
    splits, _ = read_dataset_dir(sample_dataset)
    version = version_of(emulator, splits, "test")
    whole, _ = fetch(version, tmp_path / "whole")
    emulator.state.settings.export_max_assets = 2
    exports_before = len(emulator.requests("POST", "*/annotations/export"))
    batched, _ = fetch(version, tmp_path / "batched", export_batch=2)
    assert len(emulator.requests("POST", "*/annotations/export")) - exports_before == 2
    assert boxes_by_file(batched) == boxes_by_file(whole)


def test_merge_matches_categories_by_name_and_keeps_dangling_references_unknown() -> None:
    first = {
        "categories": [{"id": 0, "name": "cat"}, {"id": 1, "name": "dog"}],
        "images": [{"id": 0, "file_name": "a.png"}],
        "annotations": [{"id": 0, "image_id": 0, "category_id": 1, "bbox": [1, 1, 2, 2]}],
    }
    second = {
        "categories": [{"id": 0, "name": "dog"}, {"id": 1, "name": "cat"}],
        "images": [{"id": 0, "file_name": "b.png"}],
        "annotations": [
            {"id": 0, "image_id": 0, "category_id": 1, "bbox": [3, 3, 2, 2]},
            {"id": 1, "image_id": 7, "category_id": 5, "bbox": [0, 0, 1, 1]},
        ],
    }
    merged = merge_exports([first, second])
    assert merged["categories"] == [{"id": 0, "name": "cat"}, {"id": 1, "name": "dog"}]
    assert [i["id"] for i in merged["images"]] == [0, 1]
    assert [(a["id"], a["image_id"], a["category_id"]) for a in merged["annotations"]] == [
        (0, 0, 1),
        (1, 1, 0),
        (2, UNKNOWN_ID, UNKNOWN_ID),
    ]


def test_merge_keeps_a_categorys_skeleton() -> None:
    """A KEYPOINT version's categories carry their skeleton: merging batches keeps it."""
    skeleton = {"keypoints": ["head", "tail"], "skeleton": [[1, 2]], "supercategory": "animal"}
    batches = [
        {"categories": [{"id": 4, "name": "cat", **skeleton}], "images": [], "annotations": []},
        {"categories": [{"id": 0, "name": "cat", **skeleton}], "images": [], "annotations": []},
    ]
    assert merge_exports(batches)["categories"] == [{"id": 0, "name": "cat", **skeleton}]


def test_a_relaunch_downloads_nothing_it_already_has(
    emulator: Emulator, sample_dataset: Path, tmp_path: Path
) -> None:
    splits, _ = read_dataset_dir(sample_dataset)
    version = version_of(emulator, splits, "test")
    _, images = fetch(version, tmp_path / "fetched")
    first = len(emulator.requests(*DATA_GETS))
    leftover = next(images.iterdir())
    leftover.rename(leftover.with_name(leftover.name + ".part"))  # as a crash mid-write leaves it
    _, images = fetch(version, tmp_path / "fetched")
    assert first == 4 and len(emulator.requests(*DATA_GETS)) == first + 1
    assert not list(images.glob("*.part"))


def test_transient_storage_faults_and_expired_urls_are_retried(
    emulator: Emulator, sample_dataset: Path, tmp_path: Path
) -> None:
    splits, _ = read_dataset_dir(sample_dataset)
    version = version_of(emulator, splits, "test")
    emulator.faults.add(*DATA_GETS, status=502, times=2)
    emulator.faults.add(*DATA_GETS, drop=True)
    emulator.faults.add(*DATA_GETS, status=403)  # an expired presigned URL
    _, images = fetch(version, tmp_path / "fetched")
    source = sample_dataset / "test/images"
    assert sorted(p.read_bytes() for p in images.iterdir()) == sorted(
        p.read_bytes() for p in source.iterdir()
    )
    assert emulator.requests("GET", "/api/data/*/presigned-url")  # asked for a fresh URL


def test_a_file_that_never_arrives_fails_the_fetch_naming_it(
    emulator: Emulator, sample_dataset: Path, tmp_path: Path
) -> None:
    splits, _ = read_dataset_dir(sample_dataset)
    version = version_of(emulator, splits, "test")
    lost = next(a for a in version.list_assets() if a.filename == "test_1.png")
    del emulator.state.storage.objects[lost.object_name]
    with pytest.raises(PlatformError, match=rf"1 of 4 test images, e.g. {lost.id}\.png \(.*404"):
        fetch(version, tmp_path / "fetched")
