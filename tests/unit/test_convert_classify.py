"""COCO classification exports -> ultralytics class folders, and the class-folder order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_convert import annotation, image_entry, make_coco, make_image

from pictrain.data.convert import convert_classification
from pictrain.data.labels import class_folders, labelmap_from

CATS = [{"id": 3, "name": "dog"}, {"id": 7, "name": "cat"}]
NAMES = ["bird", "cat", "dog"]


def _tree(folder: Path) -> dict[str, list[str]]:
    """Class folder -> its image names, both in the sorted order ultralytics reads them."""
    return {d.name: sorted(p.name for p in d.iterdir()) for d in sorted(folder.iterdir())}


def test_layout_with_unlabelled_and_ambiguous_images(tmp_path: Path) -> None:
    for name in "abcdefg":
        make_image(tmp_path / "src" / f"{name}.jpg")
    images = [image_entry(i, f"{name}.jpg") for i, name in enumerate("abcdefg", start=1)]
    annotations = [
        annotation(1, [0, 0, 5, 5], category_id=7),  # a: cat
        annotation(2, [], category_id=3),  # b: dog, empty box
        # c: no annotation -> unlabelled
        annotation(4, None, category_id=7),  # d: cat and dog -> ambiguous
        annotation(4, None, category_id=3),
        annotation(5, None, category_id=3),  # e: dog twice is still dog
        annotation(5, None, category_id=3),
        annotation(6, None, category_id=7),  # f: cat, no bbox at all
        annotation(7, None, category_id=99),  # g: only an unknown category -> unlabelled
    ]
    coco = make_coco(tmp_path / "coco.json", images, annotations, CATS)
    summary = convert_classification(coco, tmp_path / "src", tmp_path / "out", "train", NAMES)
    out = tmp_path / "out" / "train"
    assert _tree(out) == {"bird": [], "cat": ["a.jpg", "f.jpg"], "dog": ["b.jpg", "e.jpg"]}
    assert (out / "cat" / "a.jpg").stat().st_ino == (tmp_path / "src" / "a.jpg").stat().st_ino
    assert (summary.images_written, summary.labels_written) == (4, 4)
    assert (summary.images_unlabelled, summary.images_ambiguous) == (2, 1)
    assert (summary.annotations_unknown_category, summary.empty_classes) == (1, ["bird"])
    report = str(summary)
    assert report.startswith("train: 4 of 7 images written, 4 labelled images")
    assert "d.jpg" in report and "1 classes without images, e.g.: bird" in report


def test_rerun_replaces_the_split(tmp_path: Path) -> None:
    make_image(tmp_path / "src" / "a.jpg")
    make_image(tmp_path / "src" / "b.jpg")
    images = [image_entry(1, "a.jpg"), image_entry(2, "b.jpg")]
    coco = make_coco(tmp_path / "c.json", images, [annotation(1, None), annotation(2, None)], CATS)
    convert_classification(coco, tmp_path / "src", tmp_path / "out", "val", NAMES)
    coco = make_coco(tmp_path / "c.json", images, [annotation(1, None, category_id=7)], CATS)
    convert_classification(coco, tmp_path / "src", tmp_path / "out", "val", NAMES)
    assert _tree(tmp_path / "out" / "val") == {"bird": [], "cat": ["a.jpg"], "dog": []}


def test_unsafe_labels_get_index_prefixed_folders(tmp_path: Path) -> None:
    make_image(tmp_path / "src" / "a.jpg")
    categories = [{"id": 1, "name": "b/c"}, {"id": 2, "name": "Zebra"}, {"id": 3, "name": ".."}]
    coco = make_coco(
        tmp_path / "c.json", [image_entry(1, "a.jpg")], [annotation(1, None, 1)], categories
    )
    names = labelmap_from([coco])
    assert names == ["..", "Zebra", "b/c"]
    convert_classification(coco, tmp_path / "src", tmp_path / "out", "train", names)
    assert _tree(tmp_path / "out" / "train") == {"0_..": [], "1_Zebra": [], "2_b_c": ["a.jpg"]}


@pytest.mark.parametrize(
    "labels",
    [
        ["dog", "Cat", "ant", "10", "9", "_x", "é", "Z"],  # safe: the labels themselves
        ["dog", "a/b", "a b", "a\\b", "tab\there", "x" * 300],  # unsafe: prefixed
        [f"class {i}" for i in range(12)] + ["a/b"],  # two-digit prefixes
    ],
)
def test_labelmap_order_is_the_class_folder_sort_order(tmp_path: Path, labels: list[str]) -> None:
    categories = [{"id": i, "name": name} for i, name in enumerate(labels)]
    coco = tmp_path / "c.json"
    coco.write_text(json.dumps({"images": [], "annotations": [], "categories": categories}))
    names = labelmap_from([coco])
    folders = class_folders(names)
    for folder in folders:
        (tmp_path / "classes" / folder).mkdir(parents=True)
    on_disk = sorted(p.name for p in (tmp_path / "classes").iterdir())  # as ultralytics reads
    assert on_disk == folders
    plain = all("/" not in n and "\\" not in n and "\t" not in n and len(n) < 200 for n in names)
    assert (folders == names) == plain


def test_class_folders() -> None:
    assert class_folders(["a", "b"]) == ["a", "b"]
    assert class_folders(["b", "a"]) == ["0_b", "1_a"]  # not sorted: the index decides
    assert class_folders(["a/b", "a_b"]) == ["0_a_b", "1_a_b"]
