"""COCO files read into a compact index: images by id, annotations grouped by image, categories.

A file is parsed once, by orjson (the standard library's parser takes what orjson refuses, such
as the `NaN` Python writes, and words the errors). A large file's `annotations` array, nearly
all of it, is parsed a few megabytes at a time (`CocoDocument.annotation_chunks`) and each
piece indexed and freed before the next, its bytes too: the peak is about the index, not the
whole document in Python objects plus orjson's own copy of it. A cut split's COCO file is
written from the same pass (`cut_coco`), so no file is parsed twice.
"""

from __future__ import annotations

import gc
import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson

from pictrain.config import CocoField
from pictrain.errors import UserError

NAN_BOX = (math.nan, math.nan, math.nan, math.nan)
_BOM = b"\xef\xbb\xbf"
_REAL = (int, float)  # JSON numbers; `type(v) in _REAL` also rules out bool
# Files up to twice this size are parsed whole; above, the annotations array goes in pieces of
# about this size: small enough that the peak is about the index itself, large enough that the
# cost per piece does not show.
CHUNK_BYTES = 1 << 20
_CHUNK_ENTRIES = 1 << 16  # raw entries of a whole-parsed file indexed (then freed) at a time
_ANNOTATIONS_KEY = re.compile(rb'"annotations"\s*:\s*\[\s*')
_BETWEEN_OBJECTS = re.compile(rb"\}\s*,\s*\{")
_AFTER_LAST_OBJECT = re.compile(rb"\}\s*\]")
_MAX_MISPLACED_CUTS = 8  # tries of each kind per piece before the file is parsed whole


class CocoImage(NamedTuple):
    id: int
    file_name: str
    width: int  # 0 when the file does not say
    height: int


class CocoAnnotation(NamedTuple):
    """A tuple, not a dataclass: a million of them are built per million annotations."""

    category_id: int
    # x, y, w, h in pixels; NaN when missing or malformed (classification needs none)
    bbox: tuple[float, float, float, float]
    iscrowd: bool
    area: float = math.nan  # as the file gives it; NaN when absent, not positive or not finite
    segmentation: Any = None  # kept only when the loader is asked to (`keep`)
    keypoints: Any = None  # likewise


class Skeleton(NamedTuple):
    """A category's point layout, as COCO keypoints files carry it (`keypoints`, `skeleton`)."""

    names: tuple[str, ...]  # the vertices, in the order of an annotation's keypoints
    edges: tuple[tuple[int, int], ...]  # pairs of vertices, numbered from 1 as COCO writes them


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
    kept: frozenset[str] = frozenset()  # the annotation fields loaded (`keep`)
    skeletons: dict[int, Skeleton] = field(default_factory=dict)  # categories that have one

    def annotations_of(self, image_id: int) -> list[CocoAnnotation]:
        return self.annotations.get(image_id, [])


class CocoDocument:
    """A parsed COCO file: the top-level object without its annotations, which are read once,
    a chunk at a time (`annotation_chunks`)."""

    def __init__(self, path: Path, data: bytearray) -> None:
        self.path = path
        self._data: bytearray | None = data
        self._annotations: list[Any] = []
        self._start = -1  # where the annotations array's content starts, when read in pieces
        self.top: dict[str, Any] = {}
        if len(data) > 2 * CHUNK_BYTES and self._find_annotations():
            return
        self._parse_whole()

    @property
    def image_ids(self) -> list[int]:
        """Ids of the images the index keeps, in file order."""
        seen: dict[int, None] = {}
        for raw in self.top["images"]:
            image = _image(raw)
            if image is not None:
                seen.setdefault(image.id)
        return list(seen)

    def annotation_chunks(self) -> Iterator[list[Any]]:
        """Every raw annotation, once. Read in pieces, the top-level keys after the array are
        added to `top` at the end; `_Unreadable` means: call `reread()` and start over."""
        if self._start < 0:
            yield from _slices(self._annotations)
            return
        assert self._data is not None
        start, data = self._start, self._data
        while True:
            piece, cut, last = _next_piece(data, start)
            yield piece
            del piece
            start = cut.end() - 1  # the next object's "{", or the array's "]"
            if last:
                self._add_rest(data[start + 1 :])
                self._data = None
                return
            # What is indexed is let go: the file's bytes do not stay beside the whole index
            # (a bytearray gives its memory back as its start moves on).
            del data[:start]
            start = 0

    def reread(self) -> CocoDocument:
        """Start over with the file parsed whole (after `_Unreadable`); read again, since the
        pieces already indexed were let go."""
        self.top, self._start = {}, -1
        self._data = _read(self.path)
        self._parse_whole()
        return self

    def _find_annotations(self) -> bool:
        """Find the top-level annotations array: the part before it must parse as an object on
        its own (and hold the images, which a cut needs before the annotations)."""
        assert self._data is not None
        key = _ANNOTATIONS_KEY.search(self._data)
        if key is None or not self._data.startswith(b"{", key.end()):
            return False
        before = self._data[: key.start()].rstrip()
        top = _loads_or_none(before[:-1] + b"}" if before.endswith(b",") else before + b"}")
        if not isinstance(top, dict) or "annotations" in top or "images" not in top:
            return False
        self.top, self._start = top, key.end()
        self._check()
        return True

    def _add_rest(self, after: bytes) -> None:
        """The keys after the annotations array (`after` starts past its "]")."""
        after = after.lstrip()
        rest = _loads_or_none(b"{" + (after[1:] if after.startswith(b",") else after))
        if not isinstance(rest, dict) or "annotations" in rest or set(rest) & set(self.top):
            raise _Unreadable
        self.top.update(rest)

    def _parse_whole(self) -> None:
        assert self._data is not None
        document = _parse(self._data, self.path)
        self._data = None
        if not isinstance(document, dict):
            document = {}
        annotations = document.pop("annotations", [])
        if not isinstance(annotations, list):
            raise UserError(f"COCO file {self.path}: 'annotations' must be a list")
        self.top, self._annotations = document, annotations
        self._check()

    def _check(self) -> None:
        if "images" not in self.top:
            raise UserError(f"COCO file {self.path} has no 'images' list: is it a COCO export?")
        if not isinstance(self.top["images"], list):
            raise UserError(f"COCO file {self.path}: 'images' must be a list")


def _cuts(data: bytearray, start: int) -> Iterator[tuple[re.Match[bytes], bool]]:
    """Where a piece starting at `start` may end, and whether it would be the last: first
    after an object followed by another, `CHUNK_BYTES` on; then, when none of those is right
    (the array ends before), after an object followed by "]", the array's end if orjson takes
    the piece. A few of each: beyond, the file is parsed whole."""
    between = _BETWEEN_OBJECTS.finditer(data, start + CHUNK_BYTES)
    end = _AFTER_LAST_OBJECT.finditer(data, start)
    return itertools.chain(
        ((m, False) for m in itertools.islice(between, _MAX_MISPLACED_CUTS)),
        ((m, True) for m in itertools.islice(end, _MAX_MISPLACED_CUTS)),
    )


def _next_piece(data: bytearray, start: int) -> tuple[list[Any], re.Match[bytes], bool]:
    """The objects from `start` to the first cut orjson takes: (them, the cut, whether it
    ends the array). A cut inside an annotation, or past the array, leaves a bracket or a
    quote open, so orjson refuses it."""
    for cut, last in _cuts(data, start):
        piece = _loads_or_none(b"[" + data[start : cut.start() + 1] + b"]")
        if piece is not None:
            return piece, cut, last
    raise _Unreadable


class _Unreadable(Exception):
    """The annotations could not be read in pieces: the file is to be parsed whole."""


Keep = frozenset[CocoField]


def load_coco(path: Path, *, keep: Keep = frozenset()) -> CocoIndex:
    """Read `path` into a `CocoIndex`, each annotation with the fields of `keep` as written;
    a file that is not COCO at all raises `UserError`."""
    with long_lived():
        return index_coco(read_coco(path), keep=keep)


def read_coco(path: Path) -> CocoDocument:
    """Parse `path`, checked to be COCO-shaped: an object with an `images` list. The
    annotations are parsed as they are read (`index_coco`, `cut_coco`)."""
    return CocoDocument(path, _read(path))


def index_coco(document: CocoDocument, *, keep: Keep = frozenset()) -> CocoIndex:
    """Index a `read_coco` document, reading its annotations (once: they are freed on the
    way) and emptying its `images` list."""
    with long_lived():
        try:
            return _index(document, keep)
        except _Unreadable:
            return _index(document.reread(), keep)


def cut_coco(
    document: CocoDocument,
    split_of: Mapping[int, str],
    dests: Mapping[str, Path],
    default: str,
    *,
    keep: Keep = frozenset(),
) -> dict[str, CocoIndex]:
    """Cut `document` by image: each image and annotation goes to the split `split_of` gives
    its image id, written as a COCO file at `dests[split]` and indexed; return the indexes.

    Entries are kept as written (segmentation, attributes...), the other top-level keys too.
    Those that name no image of `split_of` go to `default`, whose converter counts and reports
    them. Reads the document's annotations, as `index_coco` does.
    """
    images = _route(document.top["images"], "id", split_of, default, dests)
    with long_lived():
        try:
            return _cut(document, images, split_of, dests, default, keep)
        except _Unreadable:
            return _cut(document.reread(), images, split_of, dests, default, keep)


def _index(document: CocoDocument, keep: Keep) -> CocoIndex:
    builder = _IndexBuilder(document.path, keep)
    for chunk in document.annotation_chunks():
        builder.add_annotations(chunk)
    builder.add_images(document.top["images"])
    return builder.index(document.top)


def _cut(
    document: CocoDocument,
    images: dict[str, list[Any]],
    split_of: Mapping[int, str],
    dests: Mapping[str, Path],
    default: str,
    keep: Keep,
) -> dict[str, CocoIndex]:
    """Write each part as `{"images": [...], "annotations": [...], other keys}`: the other
    keys may come after the annotations in the source, so they are written last."""
    builders = {name: _IndexBuilder(dest, keep) for name, dest in dests.items()}
    files: dict[str, IO[bytes]] = {}
    try:
        for name, dest in dests.items():
            dest.parent.mkdir(parents=True, exist_ok=True)
            files[name] = dest.open("wb")
            files[name].write(b'{"images":' + _dumps(images[name]) + b',"annotations":[')
        first = dict.fromkeys(dests, True)
        for chunk in document.annotation_chunks():
            for name, entries in _route(chunk, "image_id", split_of, default, dests).items():
                if entries:
                    files[name].write((b"" if first[name] else b",") + _dumps(entries)[1:-1])
                    first[name] = False
                    builders[name].add_annotations(entries)
        rest = {key: value for key, value in document.top.items() if key != "images"}
        tail = b"]" + (b"," + _dumps(rest)[1:] if rest else b"}")
        for stream in files.values():
            stream.write(tail)
    finally:
        for stream in files.values():
            stream.close()
    indexes = {}
    for name, builder in builders.items():
        builder.add_images(images[name])
        indexes[name] = builder.index(document.top)
    return indexes


@contextmanager
def long_lived() -> Iterator[None]:
    """Build objects that live for the run (an index: millions of records) without the cyclic
    collector, then freeze them out of its sight: otherwise every later full collection (and
    ultralytics makes many) walks them all, seconds per million annotations. Whatever else is
    alive then is frozen too; frozen objects are still freed when no longer referenced."""
    with no_gc():
        yield
        gc.freeze()


@contextmanager
def no_gc() -> Iterator[None]:
    """Millions of new, long-lived objects and no cycles: the collector only costs time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read(path: Path) -> bytearray:
    try:
        data = bytearray(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"COCO file {path} does not exist") from None
    if data.startswith(_BOM):
        del data[: len(_BOM)]
    return data


def _parse(data: bytearray, path: Path) -> Any:
    try:
        with no_gc():
            return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass  # the standard parser decides, and says where it failed
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"COCO file {path} is not UTF-8 text ({err.reason})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno}"
        raise UserError(f"COCO file {path} cannot be read as JSON: {err.msg} at {where}") from None


def _loads_or_none(data: bytes) -> Any:
    try:
        with no_gc():
            return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _slices(entries: list[Any]) -> Iterator[list[Any]]:
    """`entries` a chunk at a time, each chunk removed from the list when handed out."""
    while entries:
        chunk = entries[:_CHUNK_ENTRIES]
        del entries[:_CHUNK_ENTRIES]
        yield chunk


def _route(
    entries: list[Any],
    key: str,
    split_of: Mapping[int, str],
    default: str,
    names: Mapping[str, Any],
) -> dict[str, list[Any]]:
    routed: dict[str, list[Any]] = {name: [] for name in names}
    for raw in entries:
        image_id = raw.get(key) if type(raw) is dict else None
        routed[split_of.get(image_id, default) if type(image_id) is int else default].append(raw)
    return routed


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # what only the standard parser reads: integers over 64 bits
        return json.dumps(value, ensure_ascii=False).encode("utf-8")


class _IndexBuilder:
    """A `CocoIndex` built from raw entries as they come, chunk by chunk."""

    def __init__(self, path: Path, keep: Keep) -> None:
        self._path = path
        self._keep = keep
        self._images: dict[int, CocoImage] = {}
        self._by_image: dict[int, list[CocoAnnotation]] = {}
        self._malformed_images = self._duplicates = self._malformed = 0

    def add_images(self, raw_images: list[Any]) -> None:
        """Index `raw_images`, emptying the list."""
        images = self._images
        for chunk in _slices(raw_images):
            for raw in chunk:
                image = _image(raw)
                if image is None:
                    self._malformed_images += 1
                elif image.id in images:
                    self._duplicates += 1
                else:
                    images[image.id] = image

    def add_annotations(self, chunk: list[Any]) -> None:
        """The one loop that runs once per annotation: written flat, without helper calls."""
        by_image = self._by_image
        keep_segmentation, keep_keypoints = "segmentation" in self._keep, "keypoints" in self._keep
        new, nan, inf = tuple.__new__, math.nan, math.inf
        malformed = 0
        with no_gc():
            for raw in chunk:
                try:
                    image_id, category_id = raw["image_id"], raw["category_id"]
                except (TypeError, KeyError):  # not an object, or without them
                    malformed += 1
                    continue
                if type(image_id) is not int or type(category_id) is not int:
                    malformed += 1
                    continue
                try:
                    x, y, w, h = bbox = raw["bbox"]
                except (KeyError, TypeError, ValueError):  # none, or not 4 values
                    bbox = NAN_BOX
                else:
                    if (
                        type(x) is float
                        and type(y) is float
                        and type(w) is float
                        and type(h) is float
                    ):
                        bbox = (x, y, w, h)
                    elif (
                        type(bbox) is list
                        and type(x) in _REAL
                        and type(y) in _REAL
                        and type(w) in _REAL
                        and type(h) in _REAL
                    ):
                        try:
                            bbox = (float(x), float(y), float(w), float(h))
                        except OverflowError:  # an integer beyond any float
                            bbox = NAN_BOX
                    else:
                        bbox = NAN_BOX
                area = raw.get("area")
                if type(area) is not float:
                    try:
                        area = float(area) if type(area) is int else nan
                    except OverflowError:  # an integer beyond any float
                        area = nan
                if not 0 < area < inf:
                    area = nan
                segmentation = raw.get("segmentation") if keep_segmentation else None
                keypoints = raw.get("keypoints") if keep_keypoints else None
                iscrowd = bool(raw.get("iscrowd"))
                annotation = new(
                    CocoAnnotation, (category_id, bbox, iscrowd, area, segmentation, keypoints)
                )
                group = by_image.get(image_id)
                if group is None:
                    by_image[image_id] = [annotation]
                else:
                    group.append(annotation)
        self._malformed += malformed

    def index(self, top: Mapping[str, Any]) -> CocoIndex:
        """The index, with the categories of `top` (the file's top-level object)."""
        raw_categories = top.get("categories", [])
        categories = _categories(raw_categories, self._path)
        images, by_image = self._images, self._by_image
        orphans = [image_id for image_id in by_image if image_id not in images]
        return CocoIndex(
            path=self._path,
            images=images,
            annotations=by_image,
            categories=categories,
            orphan_annotations=sum(len(by_image.pop(image_id)) for image_id in orphans),
            malformed_annotations=self._malformed,
            malformed_images=self._malformed_images,
            duplicate_images=self._duplicates,
            kept=self._keep,
            skeletons=_skeletons(raw_categories, self._path),
        )


def _image(raw: Any) -> CocoImage | None:
    if type(raw) is not dict:
        return None
    image_id, file_name = raw.get("id"), raw.get("file_name")
    if type(image_id) is not int or type(file_name) is not str or not file_name:
        return None
    width, height = raw.get("width"), raw.get("height")
    return CocoImage(
        image_id,
        file_name,
        width if type(width) is int and width > 0 else 0,
        height if type(height) is int and height > 0 else 0,
    )


def _categories(raw: Any, path: Path) -> dict[int, str]:
    """Categories are few and everything depends on them: any defect is the user's to fix."""
    if not isinstance(raw, list):
        raise UserError(f"COCO file {path}: 'categories' must be a list")
    categories: dict[int, str] = {}
    for entry in raw:
        if not isinstance(entry, dict) or type(entry.get("id")) is not int:
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


def _skeletons(raw: list[Any], path: Path) -> dict[int, Skeleton]:
    """The categories' point layouts, checked (after `_categories`): `keypoints` a list of
    vertex names (a lone name as the SDK's import takes it), `skeleton` pairs of them."""
    skeletons: dict[int, Skeleton] = {}
    for entry in raw:
        names, edges = entry.get("keypoints"), entry.get("skeleton")
        if not names:  # none, or no vertex: no layout
            continue
        where = f"COCO file {path}: category {entry['name']!r}"
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise UserError(f"{where}: 'keypoints' must be a list of vertex names")
        pairs = edges or []
        if not isinstance(pairs, list) or not all(_is_edge(e, len(names)) for e in pairs):
            raise UserError(
                f"{where}: 'skeleton' must be pairs of vertex numbers from 1 to {len(names)}, "
                f"not {edges!r}"
            )
        skeletons[entry["id"]] = Skeleton(tuple(names), tuple((a, b) for a, b in pairs))
    return skeletons


def _is_edge(edge: Any, vertices: int) -> bool:
    return (
        isinstance(edge, list)
        and len(edge) == 2
        and all(type(v) is int and 1 <= v <= vertices for v in edge)
    )
