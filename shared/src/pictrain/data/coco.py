"""COCO files read into a compact index: images by id, annotations grouped by image, categories.

The file is walked once: the big `images` and `annotations` arrays are decoded one element at a
time and each element is turned into a small record right away, so memory holds the text plus
the compact index, never a million raw dicts at once.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pictrain.errors import UserError

STREAMED_KEYS = ("images", "annotations")
NAN_BOX = (math.nan, math.nan, math.nan, math.nan)

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True, slots=True)
class CocoImage:
    id: int
    file_name: str
    width: int  # 0 when the file does not say
    height: int


@dataclass(frozen=True, slots=True)
class CocoAnnotation:
    category_id: int
    # x, y, w, h in pixels; NaN when missing or malformed (classification needs none)
    bbox: tuple[float, float, float, float]
    iscrowd: bool
    segmentation: Any = None  # kept only when the loader is asked to (segmentation tasks)
    area: float = math.nan  # the file's `area`; NaN when missing or malformed


@dataclass
class CocoIndex:
    """One COCO file, validated entry by entry; what could not be read is counted, not raised."""

    path: Path
    images: dict[int, CocoImage]
    annotations: dict[int, list[CocoAnnotation]]  # by image id, only for images that exist
    categories: dict[int, str]  # id -> name
    orphan_annotations: int = 0  # image_id matches no image
    malformed_annotations: int = 0  # not an object, or image_id/category_id not integers
    malformed_images: int = 0  # not an object, or no integer id / file_name
    duplicate_images: int = 0  # same id seen again; the first one is kept
    segmentation_kept: bool = False  # loaded with keep_segmentation

    def annotations_of(self, image_id: int) -> list[CocoAnnotation]:
        return self.annotations.get(image_id, [])


def load_coco(path: Path, *, keep_segmentation: bool = False) -> CocoIndex:
    """Read `path` into a `CocoIndex`; a file that is not COCO at all raises `UserError`."""
    images: dict[int, CocoImage] = {}
    by_image: dict[int, list[CocoAnnotation]] = {}
    counts = {"malformed_images": 0, "duplicate_images": 0, "malformed_annotations": 0}

    def on_image(raw: Any) -> None:
        image = _image(raw)
        if image is None:
            counts["malformed_images"] += 1
        elif image.id in images:
            counts["duplicate_images"] += 1
        else:
            images[image.id] = image

    def on_annotation(raw: Any) -> None:
        parsed = _annotation(raw, keep_segmentation)
        if parsed is None:
            counts["malformed_annotations"] += 1
            return
        image_id, annotation = parsed
        group = by_image.get(image_id)
        if group is None:
            by_image[image_id] = [annotation]
        else:
            group.append(annotation)

    rest = scan_coco(path, on_image, on_annotation)
    orphans = [image_id for image_id in by_image if image_id not in images]
    orphan_count = sum(len(by_image.pop(image_id)) for image_id in orphans)
    return CocoIndex(
        path=path,
        images=images,
        annotations=by_image,
        categories=_categories(rest.pop("categories", []), path),
        orphan_annotations=orphan_count,
        segmentation_kept=keep_segmentation,
        **counts,
    )


def scan_coco(
    path: Path, on_image: Callable[[Any], None], on_annotation: Callable[[Any], None]
) -> dict[str, Any]:
    """Call the handlers once per raw image / annotation; return the other top-level keys."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"COCO file {path} does not exist") from None
    except UnicodeDecodeError as err:
        raise UserError(f"COCO file {path} is not UTF-8 text ({err.reason})") from None
    handlers = {"images": on_image, "annotations": on_annotation}
    rest: dict[str, Any] = {}
    streamed: set[str] = set()
    try:
        _walk_object(text, handlers, rest, streamed)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno}"
        raise UserError(f"COCO file {path} cannot be read as JSON: {err.msg} at {where}") from None
    for key in STREAMED_KEYS:
        if key in rest:
            raise UserError(f"COCO file {path}: '{key}' must be a list")
    if "images" not in streamed:
        raise UserError(f"COCO file {path} has no 'images' list: is it a COCO export?")
    return rest


def _walk_object(
    text: str,
    handlers: dict[str, Callable[[Any], None]],
    rest: dict[str, Any],
    streamed: set[str],
) -> None:
    """Walk the top-level object: stream the arrays named in `handlers` (noted in `streamed`),
    decode the other values whole into `rest`."""
    pos = _skip(text, _expect(text, _skip(text, 0), "{"))
    if text.startswith("}", pos):
        return _end(text, pos + 1)
    while True:
        key, pos = _DECODER.raw_decode(text, pos)
        if not isinstance(key, str):
            raise json.JSONDecodeError("expected a key", text, pos)
        pos = _skip(text, _expect(text, _skip(text, pos), ":"))
        handler = handlers.get(key)
        if handler is not None and text.startswith("[", pos):
            pos = _walk_array(text, pos + 1, handler)
            streamed.add(key)
        else:
            rest[key], pos = _DECODER.raw_decode(text, pos)
        pos = _skip(text, pos)
        if text.startswith("}", pos):
            return _end(text, pos + 1)
        pos = _skip(text, _expect(text, pos, ","))


def _walk_array(text: str, pos: int, handler: Callable[[Any], None]) -> int:
    pos = _skip(text, pos)
    if text.startswith("]", pos):
        return pos + 1
    while True:
        value, pos = _DECODER.raw_decode(text, pos)
        handler(value)
        pos = _skip(text, pos)
        if text.startswith("]", pos):
            return pos + 1
        pos = _skip(text, _expect(text, pos, ","))


def _skip(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def _expect(text: str, pos: int, char: str) -> int:
    if not text.startswith(char, pos):
        raise json.JSONDecodeError(f"expected '{char}'", text, pos)
    return pos + 1


def _end(text: str, pos: int) -> None:
    if _skip(text, pos) != len(text):
        raise json.JSONDecodeError("extra data after the top-level object", text, pos)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _image(raw: Any) -> CocoImage | None:
    if not isinstance(raw, dict) or not _is_int(raw.get("id")):
        return None
    file_name = raw.get("file_name")
    if not isinstance(file_name, str) or not file_name:
        return None
    width, height = raw.get("width"), raw.get("height")
    return CocoImage(
        id=raw["id"],
        file_name=file_name,
        width=width if _is_int(width) and width > 0 else 0,
        height=height if _is_int(height) and height > 0 else 0,
    )


def _annotation(raw: Any, keep_segmentation: bool) -> tuple[int, CocoAnnotation] | None:
    if not isinstance(raw, dict):
        return None
    image_id, category_id = raw.get("image_id"), raw.get("category_id")
    if not _is_int(image_id) or not _is_int(category_id):
        return None
    annotation = CocoAnnotation(
        category_id=category_id,
        bbox=_bbox(raw.get("bbox")),
        iscrowd=bool(raw.get("iscrowd", 0)),
        segmentation=raw.get("segmentation") if keep_segmentation else None,
        area=_area(raw.get("area")),
    )
    return image_id, annotation


def _bbox(raw: Any) -> tuple[float, float, float, float]:
    if not isinstance(raw, list) or len(raw) != 4:
        return NAN_BOX
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw):
        return NAN_BOX
    x, y, w, h = (float(v) for v in raw)
    return x, y, w, h


def _area(raw: Any) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool) and raw >= 0:
        return float(raw)
    return math.nan


def _categories(raw: Any, path: Path) -> dict[int, str]:
    """Categories are few and everything depends on them: any defect is the user's to fix."""
    if not isinstance(raw, list):
        raise UserError(f"COCO file {path}: 'categories' must be a list")
    categories: dict[int, str] = {}
    for entry in raw:
        if not isinstance(entry, dict) or not _is_int(entry.get("id")):
            raise UserError(f"COCO file {path}: category {entry!r} has no integer 'id'")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise UserError(f"COCO file {path}: category id {entry['id']} has no name")
        previous = categories.setdefault(entry["id"], name)
        if previous != name:
            raise UserError(
                f"COCO file {path}: category id {entry['id']} is both {previous!r} and {name!r}"
            )
    return categories
