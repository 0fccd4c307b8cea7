"""Split resolution: seeded cuts from train, aliases, and clear errors for unusable splits."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pictrain.data import coco
from pictrain.data.coco import load_coco
from pictrain.data.splits import DatasetSplit, resolve_splits
from pictrain.errors import UserError
from pictrain.splitnames import canonical_split

CATEGORIES = [{"id": 4, "name": "a"}, {"id": 9, "name": "b"}]


def _split(tmp_path: Path, name: str, n_images: int) -> DatasetSplit:
    coco = {
        "info": {"description": name},
        "images": [
            {"id": i, "file_name": f"{i}.jpg", "width": 10, "height": 10} for i in range(n_images)
        ],
        "annotations": [
            {
                "id": 100 + i,
                "image_id": i,
                "category_id": 4,
                "bbox": [0, 0, 5, 5],
                "segmentation": [[0, 0, 5, 0, 5, 5]],
            }
            for i in range(n_images)
        ],
        "categories": CATEGORIES,
    }
    path = tmp_path / f"{name}-in.json"
    path.write_text(json.dumps(coco))
    return DatasetSplit(name, tmp_path / f"{name}-images", path, version_id=f"v-{name}")


def _image_ids(split: DatasetSplit) -> set[int]:
    return {image["id"] for image in json.loads(split.coco_file.read_text())["images"]}


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("train", "train"),
        ("Training", "train"),
        ("val", "val"),
        ("valid", "val"),
        ("validation", "val"),
        ("EVAL", "val"),
        ("test", "test"),
        (" testing ", "test"),
        ("holdout", None),
    ],
)
def test_canonical_split(alias: str, canonical: str | None) -> None:
    assert canonical_split(alias) == canonical


def test_train_only_is_cut_80_10_10_by_image(tmp_path: Path) -> None:
    train = _split(tmp_path, "train", 20)
    resolved = resolve_splits({"train": train}, tmp_path / "work", seed=1)
    parts = {name: _image_ids(split) for name, split in resolved.splits.items()}
    assert {name: len(ids) for name, ids in parts.items()} == {"train": 16, "val": 2, "test": 2}
    assert parts["train"] | parts["val"] | parts["test"] == set(range(20))
    assert not parts["train"] & parts["val"] and not parts["val"] & parts["test"]
    for name, split in resolved.splits.items():
        coco = json.loads(split.coco_file.read_text())
        assert {a["image_id"] for a in coco["annotations"]} == parts[name]
        assert coco["categories"] == CATEGORIES
        assert coco["info"] == {"description": "train"}
        assert coco["annotations"][0]["segmentation"] == [[0, 0, 5, 0, 5, 5]]
        assert (split.name, split.images_dir, split.version_id) == (
            name,
            train.images_dir,
            "v-train",
        )
    assert "seed 1" in resolved.notes[0]


def test_holdout_fraction_sets_the_share_of_train_cut_for_each_split(tmp_path: Path) -> None:
    train = _split(tmp_path, "train", 20)
    resolved = resolve_splits({"train": train}, tmp_path / "work", seed=1, holdout_fraction=0.25)
    sizes = {name: len(_image_ids(split)) for name, split in resolved.splits.items()}
    assert sizes == {"train": 10, "val": 5, "test": 5}


def test_cut_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    train = _split(tmp_path, "train", 30)

    def cut(seed: int, folder: str) -> dict[str, set[int]]:
        resolved = resolve_splits({"train": train}, tmp_path / folder, seed=seed)
        return {name: _image_ids(split) for name, split in resolved.splits.items()}

    assert cut(7, "a") == cut(7, "b")
    assert cut(7, "a") != cut(8, "c")


def test_train_and_test_cut_val_from_train(tmp_path: Path) -> None:
    train, test = _split(tmp_path, "train", 5), _split(tmp_path, "test", 3)
    resolved = resolve_splits({"training": train, "testing": test}, tmp_path / "work", seed=0)
    assert resolved.splits["test"] == test
    assert len(_image_ids(resolved.splits["val"])) == 1
    assert len(_image_ids(resolved.splits["train"])) == 4


def test_train_and_val_reuse_val_as_test(tmp_path: Path) -> None:
    train, val = _split(tmp_path, "train", 5), _split(tmp_path, "val", 2)
    val = replace(val, name="valid")
    resolved = resolve_splits({"train": train, "valid": val}, tmp_path / "work", seed=0)
    as_val = replace(val, name="val")
    assert resolved.splits == {"train": train, "val": as_val, "test": as_val}
    assert list(resolved.splits) == ["train", "val", "test"]
    assert "test" in resolved.notes[0]


def test_all_three_are_used_as_given(tmp_path: Path) -> None:
    given = {name: _split(tmp_path, name, 2) for name in ("train", "val", "test")}
    resolved = resolve_splits(given, tmp_path / "work", seed=0)
    assert resolved.splits == given and resolved.notes == []


def test_empty_split_is_a_clear_error(tmp_path: Path) -> None:
    train, val = _split(tmp_path, "train", 5), _split(tmp_path, "val", 0)
    with pytest.raises(UserError, match="the val split has 0 usable images"):
        resolve_splits({"train": train, "val": val}, tmp_path / "work", seed=0)


def test_train_too_small_to_cut(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="the train split has 2 usable images"):
        resolve_splits({"train": _split(tmp_path, "train", 2)}, tmp_path / "work", seed=0)


def test_train_is_required(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="a train split is required"):
        resolve_splits({"val": _split(tmp_path, "val", 3)}, tmp_path / "work", seed=0)


def test_unknown_or_doubled_split_names(tmp_path: Path) -> None:
    train = _split(tmp_path, "train", 3)
    with pytest.raises(UserError, match="unknown split name 'holdout'"):
        resolve_splits({"train": train, "holdout": train}, tmp_path / "work", seed=0)
    with pytest.raises(UserError, match="two attached splits are the val split"):
        resolve_splits({"train": train, "val": train, "eval": train}, tmp_path / "work", seed=0)


@pytest.mark.parametrize("piece_bytes", [None, 200])
def test_each_split_comes_with_its_index_as_its_file_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, piece_bytes: int | None
) -> None:
    """Also when the file is read in pieces, as large ones are."""
    if piece_bytes:
        monkeypatch.setattr(coco, "CHUNK_BYTES", piece_bytes)
    train = _split(tmp_path, "train", 20)
    resolved = resolve_splits(
        {"train": train}, tmp_path / "work", seed=1, keep=frozenset({"segmentation"})
    )
    monkeypatch.undo()
    for name, split in resolved.splits.items():
        index, reread = (
            resolved.indexes[name],
            load_coco(split.coco_file, keep=frozenset({"segmentation"})),
        )
        assert (index.images, index.annotations) == (reread.images, reread.annotations)
        assert index.categories == reread.categories and "segmentation" in index.kept
        assert json.loads(split.coco_file.read_text())["info"] == {"description": "train"}
