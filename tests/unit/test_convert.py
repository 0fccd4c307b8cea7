"""COCO -> YOLO conversion on small hand-written COCO files, with hand-computed label lines."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from pictrain.data import convert
from pictrain.data.coco import load_coco
from pictrain.data.convert import ConversionSummary, convert_detection, write_data_yaml
from pictrain.data.labels import labelmap_from
from pictrain.errors import UserError

CATEGORIES = [{"id": 3, "name": "dog"}, {"id": 7, "name": "cat"}]
NAMES = ["cat", "dog"]  # dog -> class 1, cat -> class 0


def make_image(
    path: Path, size: tuple[int, int] = (100, 50), color: str = "gray", **save: Any
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, **save)


def make_coco(
    path: Path, images: list[dict], annotations: list[dict], categories=CATEGORIES
) -> Path:
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return path


def image_entry(image_id: int, file_name: str, width: int = 100, height: int = 50) -> dict:
    return {"id": image_id, "file_name": file_name, "width": width, "height": height}


def annotation(image_id: int, bbox: list[float] | None, category_id: int = 3, **extra: Any) -> dict:
    """A COCO annotation; `bbox=None` leaves the key out, as classification exports may."""
    entry = {"id": 0, "image_id": image_id, "category_id": category_id, **extra}
    return entry if bbox is None else {**entry, "bbox": bbox}


def _convert(tmp_path: Path, images: list[dict], annotations: list[dict]) -> ConversionSummary:
    coco = make_coco(tmp_path / "coco.json", images, annotations)
    return convert_detection(coco, tmp_path / "src", tmp_path / "out", "train", NAMES)


def read_labels(tmp_path: Path, stem: str, split: str = "train") -> list[str]:
    return (tmp_path / "out" / "labels" / split / f"{stem}.txt").read_text().splitlines()


def test_normal_and_clipped_boxes(tmp_path: Path) -> None:
    make_image(tmp_path / "src" / "a.jpg")
    summary = _convert(
        tmp_path,
        [image_entry(1, "a.jpg")],
        [annotation(1, [10, 5, 20, 10]), annotation(1, [90, 40, 20, 20], category_id=7)],
    )
    # (10+30)/2/100, (5+15)/2/50, 20/100, 10/50; clipped to x 90..100, y 40..50
    assert read_labels(tmp_path, "a") == [
        "1 0.200000 0.200000 0.200000 0.200000",
        "0 0.950000 0.900000 0.100000 0.200000",
    ]
    assert (summary.images_written, summary.labels_written, summary.boxes_clipped) == (1, 2, 1)


def test_bad_boxes_are_dropped_and_counted(tmp_path: Path) -> None:
    make_image(tmp_path / "src" / "a.jpg")
    annotations = [
        annotation(1, [150, 10, 10, 10]),  # fully outside
        annotation(1, [10, 10, 0.5, 10]),  # under 1 px wide
        annotation(1, [10, 10, -5, 10]),  # negative
        annotation(1, [math.nan, 10, 5, 10]),  # NaN
        annotation(1, [99.5, 10, 20, 10]),  # half a pixel left after clipping
        annotation(1, [10, 10, 5, 5], category_id=99),  # unknown category
        annotation(42, [10, 10, 5, 5]),  # unknown image
        annotation(1, [10, 10, 5, 5], iscrowd=1),
        annotation(1, [1, 2, 3]),  # malformed bbox: no box
    ]
    summary = _convert(tmp_path, [image_entry(1, "a.jpg")], annotations)
    assert read_labels(tmp_path, "a") == []
    assert summary.boxes_outside == 1
    assert (summary.boxes_degenerate, summary.boxes_missing) == (4, 1)
    assert summary.annotations_unknown_category == 1
    assert summary.annotations_unknown_image == 1
    assert summary.annotations_crowd == 1
    assert (summary.labels_written, summary.background_images) == (0, 1)
    assert len(str(summary).splitlines()) <= 4


def test_boxes_checked_in_batches_give_the_same_files_and_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Good and bad boxes over several images and batches: the batch size changes nothing."""
    boxes = [
        [10, 5, 20, 10],
        [90, 40, 20, 20],  # clipped
        [150, 10, 10, 10],  # outside
        [1e308, 10, 1e308, 10],  # outside: its right edge overflows
        [10, 10, 0.5, 10],  # under 1 px
        [-math.inf, 10, 5, 10],  # not finite
        [10, 10, -5, 10],  # negative
        [0.1234565, 0.0078125, 33.3333, 12.5],
    ]
    images, annotations = [], []
    for i in range(6):
        make_image(tmp_path / "src" / f"{i}.jpg")
        images.append(image_entry(i + 1, f"{i}.jpg"))
        for j, box in enumerate(boxes[i::3]):
            extra = {"iscrowd": 1} if (i, j) == (4, 0) else {}
            annotations.append(annotation(i + 1, box, category_id=(3, 7, 5)[(i + j) % 3], **extra))
    coco = make_coco(tmp_path / "coco.json", images, annotations)
    runs = {}
    for batch in (2, 512):
        monkeypatch.setattr(convert, "BATCH", batch)
        summary = convert_detection(coco, tmp_path / "src", tmp_path / "out", "train", NAMES)
        runs[batch] = (summary, {str(i): read_labels(tmp_path, str(i)) for i in range(6)})
    assert runs[2] == runs[512]
    summary, labels = runs[2]
    assert labels["0"] == ["1 0.200000 0.200000 0.200000 0.200000"]
    x, y, w, h = boxes[-1]
    assert labels["1"] == [
        "0 0.950000 0.900000 0.100000 0.200000",
        f"1 {(x + x + w) / 2 / 100:.6f} {(y + y + h) / 2 / 50:.6f} {w / 100:.6f} {h / 50:.6f}",
    ]
    assert (summary.labels_written, summary.boxes_clipped, summary.boxes_outside) == (3, 1, 2)
    assert (summary.boxes_degenerate, summary.annotations_crowd) == (2, 1)
    assert (summary.annotations_unknown_category, summary.background_images) == (5, 4)
    assert summary.class_counts == {"cat": 1, "dog": 2}


def test_image_without_annotations_gets_an_empty_label_file(tmp_path: Path) -> None:
    make_image(tmp_path / "src" / "a.jpg")
    make_image(tmp_path / "src" / "b.png")
    summary = _convert(
        tmp_path,
        [image_entry(1, "a.jpg"), image_entry(2, "b.png")],
        [annotation(1, [0, 0, 10, 10])],
    )
    assert read_labels(tmp_path, "b") == []
    assert (tmp_path / "out" / "images" / "train" / "b.png").is_file()
    assert summary.background_images == 1


def test_missing_and_corrupt_images_are_dropped(tmp_path: Path) -> None:
    make_image(tmp_path / "src" / "ok.jpg")
    (tmp_path / "src" / "junk.jpg").write_bytes(b"not an image at all")
    good = (tmp_path / "src" / "ok.jpg").read_bytes()
    (tmp_path / "src" / "cut.jpg").write_bytes(good[: len(good) // 2])
    images = [
        image_entry(1, "ok.jpg"),
        image_entry(2, "gone.jpg"),
        image_entry(3, "junk.jpg"),
        image_entry(4, "cut.jpg"),
    ]
    summary = _convert(
        tmp_path, images, [annotation(2, [0, 0, 10, 10]), annotation(3, [0, 0, 10, 10])]
    )
    assert (summary.images_written, summary.images_missing, summary.images_corrupt) == (1, 1, 2)
    assert summary.annotations_of_dropped_images == 2
    assert sorted((tmp_path / "out" / "images" / "train").iterdir()) == [
        tmp_path / "out" / "images" / "train" / "ok.jpg"
    ]
    report = str(summary)
    assert "gone.jpg" in report and "junk.jpg" in report and "cut.jpg" in report


def test_jpeg_with_a_trailer_after_its_end_marker_is_kept(tmp_path: Path) -> None:
    make_image(tmp_path / "src" / "a.jpg")
    with (tmp_path / "src" / "a.jpg").open("ab") as file:
        file.write(b"camera maker trailer")
    summary = _convert(tmp_path, [image_entry(1, "a.jpg")], [])
    assert (summary.images_written, summary.images_corrupt) == (1, 0)


@pytest.mark.parametrize(("orientation", "red_top"), [(6, True), (8, False)])
def test_exif_rotated_image_is_written_upright(
    tmp_path: Path, orientation: int, red_top: bool
) -> None:
    # Stored 60x40, left half red. Orientation 6 = displayed turned 90° clockwise (red half on
    # top), 8 = turned 90° counter-clockwise (red half at the bottom); the annotator saw 40x60.
    stored = Image.new("RGB", (60, 40), "blue")
    stored.paste((255, 0, 0), (0, 0, 30, 40))
    exif = Image.Exif()
    exif[0x0112] = orientation
    (tmp_path / "src").mkdir()
    stored.save(tmp_path / "src" / "r.jpg", exif=exif, quality=95)
    make_image(tmp_path / "src" / "plain.jpg")

    summary = _convert(
        tmp_path,
        [image_entry(1, "r.jpg", width=40, height=60), image_entry(2, "plain.jpg")],
        [annotation(1, [0, 0 if red_top else 30, 40, 30])],  # the red half, as displayed
    )
    written = tmp_path / "out" / "images" / "train" / "r.jpg"
    with Image.open(written) as image:
        assert image.size == (40, 60)
        assert image.getexif().get(0x0112) in (None, 1)
        top, bottom = (image.convert("RGB").getpixel((20, y)) for y in (10, 50))
    red, blue = (top, bottom) if red_top else (bottom, top)
    assert red[0] > 200 and red[2] < 60
    assert blue[2] > 200 and blue[0] < 60
    cy = "0.250000" if red_top else "0.750000"
    assert read_labels(tmp_path, "r") == [f"1 0.500000 {cy} 1.000000 0.500000"]
    assert (summary.images_rotated, summary.sizes_from_file) == (1, 0)
    # the rotated image is a new file; the others share the source's inode (hard link)
    src, out = tmp_path / "src", tmp_path / "out" / "images" / "train"
    assert (out / "r.jpg").stat().st_ino != (src / "r.jpg").stat().st_ino
    assert (out / "plain.jpg").stat().st_ino == (src / "plain.jpg").stat().st_ino


def test_size_from_file_when_json_disagrees(tmp_path: Path) -> None:
    make_image(tmp_path / "src" / "a.jpg")  # really 100x50
    summary = _convert(
        tmp_path, [image_entry(1, "a.jpg", 200, 100)], [annotation(1, [10, 5, 20, 10])]
    )
    assert read_labels(tmp_path, "a") == ["1 0.200000 0.200000 0.200000 0.200000"]
    assert summary.sizes_from_file == 1


def test_identical_stems_in_sub_folders_do_not_collide(tmp_path: Path) -> None:
    for name in ("x/img.jpg", "y/img.jpg", "x__img.jpg", "y/img.png"):
        make_image(tmp_path / "src" / name)
    images = [
        image_entry(1, "x/img.jpg"),
        image_entry(2, "y/img.jpg"),
        image_entry(3, "x__img.jpg"),
        image_entry(4, "y/img.png"),
    ]
    annotations = [annotation(i, [0, 0, 10 * i, 10]) for i in range(1, 5)]
    summary = _convert(tmp_path, images, annotations)
    out = tmp_path / "out" / "images" / "train"
    assert sorted(p.name for p in out.iterdir()) == [
        "x__img.jpg",
        "x__img_3.jpg",
        "y__img.jpg",
        "y__img_4.png",
    ]
    assert read_labels(tmp_path, "x__img_3") == ["1 0.150000 0.100000 0.300000 0.200000"]
    assert read_labels(tmp_path, "y__img_4") == ["1 0.200000 0.100000 0.400000 0.200000"]
    assert summary.images_renamed == 2
    assert summary.source_name("y__img_4.png") == "y/img.png"
    assert summary.source_name("x__img.jpg") == "x/img.jpg"


def test_file_names_escaping_the_folder_are_rejected(tmp_path: Path) -> None:
    make_image(tmp_path / "evil.jpg")  # exists, but outside the images folder
    make_image(tmp_path / "src" / "ok.jpg")
    images = [
        image_entry(1, "../evil.jpg"),
        image_entry(2, str(tmp_path / "evil.jpg")),
        image_entry(3, "ok.jpg"),
    ]
    summary = _convert(tmp_path, images, [annotation(1, [0, 0, 10, 10])])
    assert (summary.images_unsafe_name, summary.images_written) == (2, 1)
    assert summary.annotations_of_dropped_images == 1
    assert not (tmp_path / "out" / "images" / "train" / "evil.jpg").exists()


def test_same_class_order_across_splits_with_different_ids(tmp_path: Path) -> None:
    make_image(tmp_path / "src" / "a.jpg")
    train = make_coco(
        tmp_path / "train.json",
        [image_entry(1, "a.jpg")],
        [annotation(1, [0, 0, 10, 10], category_id=7)],
        [{"id": 3, "name": "dog"}, {"id": 7, "name": "cat"}],
    )
    val = make_coco(
        tmp_path / "val.json",
        [image_entry(1, "a.jpg")],
        [annotation(1, [0, 0, 10, 10], category_id=2)],
        [{"id": 10, "name": "dog"}, {"id": 2, "name": "cat"}, {"id": 5, "name": "bird"}],
    )
    names = labelmap_from([train, load_coco(val)])
    assert names == ["bird", "cat", "dog"]
    for split, coco in (("train", train), ("val", val)):
        convert_detection(coco, tmp_path / "src", tmp_path / "out", split, names)
        assert read_labels(tmp_path, "a", split) == ["1 0.050000 0.100000 0.100000 0.200000"]


def test_labelmap_without_categories_is_a_clear_error(tmp_path: Path) -> None:
    coco = make_coco(tmp_path / "c.json", [], [], categories=[])
    with pytest.raises(UserError, match="no categories"):
        labelmap_from([coco])


def test_no_usable_image_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    with pytest.raises(UserError, match="the train split has 0 usable images"):
        _convert(tmp_path, [image_entry(1, "gone.jpg")], [])


def test_not_a_coco_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [1, 2,')
    with pytest.raises(UserError, match="cannot be read as JSON"):
        load_coco(bad)
    bad.write_text('{"annotations": []}')
    with pytest.raises(UserError, match="no 'images' list"):
        load_coco(bad)


def test_segmentation_is_kept_only_when_asked(tmp_path: Path) -> None:
    polygon = [[0, 0, 10, 0, 10, 10]]
    coco = make_coco(
        tmp_path / "c.json",
        [image_entry(1, "a.jpg")],
        [annotation(1, [0, 0, 10, 10], segmentation=polygon)],
    )
    assert load_coco(coco).annotations_of(1)[0].segmentation is None
    assert (
        load_coco(coco, keep=frozenset({"segmentation"})).annotations_of(1)[0].segmentation
        == polygon
    )


def test_rerun_replaces_the_previous_output(tmp_path: Path) -> None:
    make_image(tmp_path / "src" / "a.jpg")
    make_image(tmp_path / "src" / "b.jpg")
    _convert(tmp_path, [image_entry(1, "a.jpg"), image_entry(2, "b.jpg")], [])
    _convert(tmp_path, [image_entry(1, "a.jpg")], [])
    assert [p.name for p in (tmp_path / "out" / "labels" / "train").iterdir()] == ["a.txt"]


def test_output_inside_the_source_is_refused(tmp_path: Path) -> None:
    make_image(tmp_path / "out" / "images" / "train" / "a.jpg")
    coco = make_coco(tmp_path / "coco.json", [image_entry(1, "a.jpg")], [])
    with pytest.raises(UserError, match="would overwrite the source"):
        convert_detection(
            coco, tmp_path / "out" / "images" / "train", tmp_path / "out", "train", NAMES
        )
    assert (tmp_path / "out" / "images" / "train" / "a.jpg").is_file()


def test_data_yaml(tmp_path: Path) -> None:
    path = write_data_yaml(tmp_path / "out", NAMES, ["train", "val"])
    data = yaml.safe_load(path.read_text())
    assert data == {
        "path": str((tmp_path / "out").resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": {0: "cat", 1: "dog"},
    }
    alone = yaml.safe_load(write_data_yaml(tmp_path / "out", NAMES, ["train"]).read_text())
    assert alone["val"] == "images/train"
    with pytest.raises(ValueError, match="must include train"):
        write_data_yaml(tmp_path / "out", NAMES, ["val", "test"])


def test_written_maps_each_written_coco_image_id_to_its_file(tmp_path: Path) -> None:
    for name in ("x/img.jpg", "y/img.jpg"):
        make_image(tmp_path / "src" / name)
    images = [image_entry(7, "x/img.jpg"), image_entry(3, "y/img.jpg"), image_entry(5, "gone.jpg")]
    summary = _convert(tmp_path, images, [])
    assert summary.written == {7: "x__img.jpg", 3: "y__img.jpg"}
    assert summary.images_written == len(summary.written)


def test_summary_as_table_and_label_distribution(tmp_path: Path) -> None:
    make_image(tmp_path / "src" / "a.jpg")
    annotations = [annotation(1, [10, 5, 20, 10]), annotation(1, [90, 40, 20, 20], category_id=7)]
    annotations += [annotation(1, [10, 5, 20, 10]), annotation(1, None)]
    summary = _convert(tmp_path, [image_entry(1, "a.jpg")], annotations)
    assert summary.label_distribution() == {"x": ["cat", "dog"], "y": [1, 2]}
    table = summary.table()
    assert dict(zip(table["rows"], table["data"], strict=True)) == {
        "images in": [1],
        "images written": [1],
        "background images": [0],
        "boxes written": [3],
        "fixed: boxes clipped to the image": [1],
        "dropped: annotations without a box": [1],
        "class cat": [1],
        "class dog": [2],
    }
    assert table["columns"] == ["count"]


def test_a_planted_label_cache_is_deleted_before_ultralytics_reads_it(tmp_path: Path) -> None:
    """ultralytics unpickles the label cache beside the labels (`np.load(allow_pickle=True)`);
    one left in a relaunched run's folder would run as the dataset is read."""
    import numpy as np
    from ultralytics.data.dataset import YOLODataset

    from tests.planted_weights import WritesMarker

    make_image(tmp_path / "src" / "a.jpg")
    marker = tmp_path / "marker"
    cache = tmp_path / "out" / "labels" / "train.cache"
    cache.parent.mkdir(parents=True)
    with cache.open("wb") as planted:
        np.save(planted, np.array(WritesMarker(marker), dtype=object), allow_pickle=True)
    _convert(tmp_path, [image_entry(1, "a.jpg")], [annotation(1, [10, 10, 20, 20])])
    assert not cache.exists()
    images = tmp_path / "out" / "images" / "train"
    YOLODataset(img_path=str(images), data={"names": dict(enumerate(NAMES)), "channels": 3})
    assert cache.is_file() and not marker.exists()  # ultralytics' own, written afresh
