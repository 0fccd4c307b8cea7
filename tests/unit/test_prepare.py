"""From fetched splits to the converted dataset: each COCO file parsed once, inputs hashed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pictrain.artifacts import sha256
from pictrain.data import coco
from pictrain.data.prepare import prepare_dataset
from pictrain.data.splits import DatasetSplit
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
        assert index.segmentation_kept
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
