"""The COCO reader: the fields other steps rely on, and files the fast parser refuses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from test_convert import annotation, image_entry, make_coco

from pictrain.data import coco
from pictrain.data.coco import NAN_BOX, load_coco
from pictrain.errors import UserError


@pytest.mark.parametrize(
    ("area", "expected"),
    [(12.5, 12.5), (40, 40.0), (0, math.nan), (-3.0, math.nan), ("7", math.nan), (True, math.nan)],
)
def test_area_is_kept_as_given_when_it_is_a_positive_number(
    tmp_path: Path, area: object, expected: float
) -> None:
    coco = make_coco(
        tmp_path / "c.json", [image_entry(1, "a.jpg")], [annotation(1, [0, 0, 5, 5], area=area)]
    )
    read = load_coco(coco).annotations_of(1)[0].area
    assert read == expected or (math.isnan(read) and math.isnan(expected))


def test_missing_or_infinite_area_is_nan(tmp_path: Path) -> None:
    annotations = [annotation(1, [0, 0, 5, 5]), annotation(1, [0, 0, 5, 5], area=math.inf)]
    coco = make_coco(tmp_path / "c.json", [image_entry(1, "a.jpg")], annotations)
    assert all(math.isnan(a.area) for a in load_coco(coco).annotations_of(1))


def test_file_with_nan_and_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Python's json writes NaN, which strict parsers refuse; Windows tools add a BOM."""
    coco = {
        "images": [image_entry(1, "a.jpg")],
        "annotations": [annotation(1, [math.nan, 0, 5, 5]), annotation(1, [1, 2, 3, 4])],
        "categories": [{"id": 3, "name": "dog"}],
    }
    path = tmp_path / "c.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(coco).encode())
    boxes = [a.bbox for a in load_coco(path).annotations_of(1)]
    assert math.isnan(boxes[0][0]) and boxes[1] == (1.0, 2.0, 3.0, 4.0)


def test_integers_beyond_any_float_are_no_box_and_no_area(tmp_path: Path) -> None:
    """Python's json reads them (orjson does not): no traceback, a box that is not one."""
    huge = 10**400
    coco = make_coco(
        tmp_path / "c.json",
        [image_entry(1, "a.jpg")],
        [annotation(1, [huge, 0, 5, 5], area=huge), annotation(1, [1, 2, 3, 4], area=-huge)],
    )
    first, second = load_coco(coco).annotations_of(1)
    assert first.bbox is NAN_BOX and math.isnan(first.area)
    assert second.bbox == (1.0, 2.0, 3.0, 4.0) and math.isnan(second.area)


def test_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(b'{"images": [{"id": 1, "file_name": "\xe9t\xe9.jpg"}]}')
    with pytest.raises(UserError, match="is not UTF-8 text"):
        load_coco(path)


def _awkward_coco(path: Path, bad_value: object = 1.5) -> Path:
    """Annotations whose text holds the cut patterns inside them; categories after them."""
    annotations = [annotation(i % 3 + 1, [i, 1.5, 2, 3], area=6.0) for i in range(40)]
    for i in range(0, 40, 7):
        annotations[i]["attributes"] = [{"a": "},{"}, {"b": "}]"}]
    annotations[17]["bbox"][1] = bad_value
    coco = {
        "info": {"note": '"annotations": [{'},
        "images": [image_entry(i, f"{i}.jpg") for i in (1, 2, 3)],
        "annotations": annotations,
        "categories": [{"id": 3, "name": "dog"}],
    }
    path.write_text(json.dumps(coco, indent=1))
    return path


@pytest.mark.parametrize("bad_value", [1.5, math.nan])
def test_large_file_read_in_pieces_gives_the_same_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad_value: float
) -> None:
    path = _awkward_coco(tmp_path / "c.json", bad_value)
    whole = load_coco(path, keep=frozenset({"segmentation"}))
    pieces: list[bytes] = []
    wholes: list[bytes] = []
    loads, parse = coco._loads_or_none, coco._parse
    monkeypatch.setattr(coco, "_loads_or_none", lambda data: pieces.append(data) or loads(data))
    monkeypatch.setattr(coco, "_parse", lambda data, p: wholes.append(data) or parse(data, p))
    monkeypatch.setattr(coco, "CHUNK_BYTES", 300)
    chunked = load_coco(path, keep=frozenset({"segmentation"}))
    assert len(pieces) > 5
    assert len(wholes) == (0 if bad_value == 1.5 else 1)  # NaN: orjson refuses, parsed whole
    assert repr(chunked) == repr(whole)
    assert sum(map(len, chunked.annotations.values())) == 40
    assert chunked.categories == {3: "dog"}
