"""From fetched splits to the converted dataset: each COCO file parsed once, inputs hashed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from test_convert import CATEGORIES, annotation, image_entry, make_coco, make_image

from pictrain.checksums import sha256
from pictrain.data import coco
from pictrain.data.prepare import prepare_dataset
from pictrain.data.splits import DatasetSplit
from pictrain.errors import UserError
from pictrain.synthetic import make_segmentation_dataset


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every COCO file the code parses, in order."""
    paths: list[Path] = []
    read = coco._read

    def spy(path: Path) -> object:
        paths.append(path)
        return read(path)

    monkeypatch.setattr(coco, "_read", spy)
    return paths


def _splits(tmp_path: Path, weights: dict[str, int]) -> dict[str, DatasetSplit]:
    files = make_segmentation_dataset(tmp_path / "in", 20, 32, seed=0, splits=weights)
    return {name: DatasetSplit(name, file.parent / "images", file) for name, file in files.items()}


@pytest.mark.parametrize(
    "weights", [{"train": 1}, {"train": 8, "test": 2}, {"train": 8, "val": 2, "test": 2}]
)
def test_each_coco_file_is_parsed_once_and_every_split_indexed(
    tmp_path: Path, parsed: list[Path], weights: dict[str, int]
) -> None:
    splits = _splits(tmp_path, weights)
    dataset = prepare_dataset("segment", splits, tmp_path / "out", seed=0)
    assert sorted(parsed) == sorted(split.coco_file for split in splits.values())
    assert list(dataset.indexes) == ["train", "val", "test"]
    for name, index in dataset.indexes.items():
        assert "segmentation" in index.kept
        assert len(index.images) == dataset.summaries[name].images_in


def test_checksums_are_of_the_users_files_not_the_cut_ones(tmp_path: Path) -> None:
    splits = _splits(tmp_path, {"train": 1})
    dataset = prepare_dataset("detect", splits, tmp_path / "out", seed=0)
    original = sha256(splits["train"].coco_file)
    checksums = dataset.checksums()
    assert {name: c["annotations_sha256"] for name, c in checksums.items()} == dict.fromkeys(
        ("train", "val", "test"), original
    )
    assert [c["cut_from"] for c in checksums.values()] == ["train", "train", "train"]
    assert sum(c["images"] for c in checksums.values()) == 20


def _hand_made(
    tmp_path: Path, annotations: list[dict], categories: list[dict] = CATEGORIES
) -> dict[str, DatasetSplit]:
    """Train only (val and test are cut from it): 10 images of 100 x 50."""
    images = [image_entry(i, f"{i}.jpg") for i in range(1, 11)]
    for image in images:
        make_image(tmp_path / "src" / image["file_name"])
    coco_file = make_coco(tmp_path / "train.json", images, annotations, categories)
    return {"train": DatasetSplit("train", tmp_path / "src", coco_file)}


@pytest.mark.parametrize(
    ("task", "annotation_of", "reason"),
    [
        (
            "detect",
            lambda i: annotation(i, None),  # a classification export: no boxes
            "no usable boxes: every annotation was dropped: 8 annotations without a box "
            r"\(a classification dataset\?\)",
        ),
        (
            "detect",
            lambda i: annotation(i, [5, 5, 0, 0]),
            "no usable boxes: every annotation was dropped: 8 degenerate boxes",
        ),
        (
            "segment",
            lambda i: annotation(i, [5, 5, 10, 10], segmentation=[[1, 1, 2, 2]]),
            "no usable polygons: every annotation was dropped: 8 degenerate polygon parts, "
            "8 objects without a usable shape",
        ),
        (
            "segment",
            lambda i: annotation(i, [5, 5, 10, 10]),  # a detection export: no polygons
            "no usable polygons: every annotation was dropped: 8 objects without a usable shape",
        ),
    ],
)
def test_training_split_without_a_usable_label_fails_with_the_reason(
    tmp_path: Path, task: str, annotation_of: Callable[[int], dict], reason: str
) -> None:
    splits = _hand_made(tmp_path, [annotation_of(i) for i in range(1, 11)])
    with pytest.raises(UserError, match=f"the train split has {reason}"):
        prepare_dataset(task, splits, tmp_path / "out", seed=0)


def test_background_category_is_left_out_and_unseen_ones_are_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    categories = [*CATEGORIES, {"id": 0, "name": "_background_"}, {"id": 9, "name": "bird"}]
    annotations = [annotation(i, [5, 5, 10, 10], category_id=3 + 4 * (i % 2)) for i in range(1, 11)]
    dataset = prepare_dataset("detect", _hand_made(tmp_path, annotations, categories), tmp_path, 0)
    assert dataset.names == ["bird", "cat", "dog"]
    assert "_background_ left out" in caplog.text
    assert "1 of 3 categories have no usable annotation in any split" in caplog.text
    assert "never sees): bird" in caplog.text
