"""The image pass every task shares: find each COCO image, check it, name it, place it.

A task only decides where a usable image goes (`Plan`) and writes its label files
(`write_labels`); finding, validating (unsafe names, missing, corrupt, too small, EXIF
orientation, size mismatch), naming, linking or rotating, and counting all of it happen here,
once for the three tasks.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from PIL import Image, ImageOps, UnidentifiedImageError

from pictrain.data.coco import CocoAnnotation, CocoImage, CocoIndex, no_gc
from pictrain.data.headers import read_header
from pictrain.data.summary import ConversionSummary
from pictrain.errors import UserError

# What ultralytics picks up from an images folder (ultralytics.data.utils.IMG_FORMATS).
IMAGE_SUFFIXES = frozenset(
    {".avif", ".bmp", ".dng", ".heic", ".heif", ".jp2", ".jpeg", ".jpg", ".mpo", ".png"}
    | {".tif", ".tiff", ".webp"}
)
# Formats we can read, rotate and re-save with Pillow alone, and their file suffix.
FORMAT_SUFFIX = {
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "PNG": ".png",
    "BMP": ".bmp",
    "TIFF": ".tif",
    "WEBP": ".webp",
}
MIN_SIDE = 10  # ultralytics rejects smaller images
ORIENTATION = 0x0112
_DRIVE = re.compile(r"^[A-Za-z]:")


class Probe(NamedTuple):
    path: str
    format: str
    width: int  # as displayed, EXIF orientation applied: the frame the annotations are in
    height: int
    orientation: int  # 1 = none


class SourceImage(NamedTuple):
    """An image that passed every check, with its unique flat output name."""

    image: CocoImage
    probe: Probe
    name: str
    annotations: Sequence[CocoAnnotation]

    @property
    def stem(self) -> str:
        return self.name.rsplit(".", 1)[0]


# A task's decision for one usable image: where it goes (None drops it; the task counts why).
# A task with label files writes them itself (`write_labels`), a batch of images at a time.
Plan = Callable[[SourceImage, ConversionSummary], str | None]


class _Rejected(NamedTuple):
    missing: bool  # else unreadable or unusable
    reason: str


def convert_images(
    index: CocoIndex, images_dir: Path, summary: ConversionSummary, plan: Plan
) -> None:
    """Find, check, name and place every image of `index`; `plan` decides where it goes.

    One image after the other, in file order: a thread pool costs more in locking than the
    few microseconds of file work per image it could overlap.
    """
    root = os.path.join(images_dir, "")
    namer = _Namer()
    annotations_of = index.annotations.get
    with no_gc():
        for image in index.images.values():
            annotations = annotations_of(image.id, ())
            parts = safe_parts(image.file_name)
            if parts is None:
                summary.images_unsafe_name += 1
                summary.annotations_of_dropped_images += len(annotations)
                summary.note("unsafe file names", image.file_name)
                continue
            probe = _probe(root, parts)
            if type(probe) is _Rejected:
                summary.drop_image(probe.missing, f"{image.file_name} ({probe.reason})")
                summary.annotations_of_dropped_images += len(annotations)
                continue
            if (
                image.width
                and image.height
                and (image.width, image.height) != (probe.width, probe.height)
            ):
                summary.sizes_from_file += 1
            name = namer.name_for(parts, image.id, FORMAT_SUFFIX[probe.format])
            if name != image.file_name:
                summary.source_names[name] = image.file_name
            image_dest = plan(SourceImage(image, probe, name, annotations), summary)
            if image_dest is None:
                continue
            _place(probe, image_dest, summary)
            summary.written[image.id] = name
    summary.images_written = len(summary.written)
    summary.images_renamed = namer.renamed
    if not summary.written:
        raise UserError(f"the {summary.split} split has 0 usable images\n{summary}")


def prepare_output(source: Path, folders: list[Path], cache: Path) -> None:
    """Empty this split's output folders (a rerun must not keep stale files), never the source."""
    resolved = source.resolve()
    for folder in folders:
        if resolved == folder.resolve() or folder.resolve() in resolved.parents:
            raise UserError(f"output folder {folder} would overwrite the source images {source}")
    for folder in folders:
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    cache.unlink(missing_ok=True)  # ultralytics' cache of a previous conversion


def safe_parts(file_name: str) -> tuple[str, ...] | None:
    """`file_name`'s folders and name inside the images folder; None if absolute or climbing
    out."""
    normal = file_name.replace("\\", "/")
    if "\x00" in normal or normal.startswith("/") or _DRIVE.match(normal):
        return None
    parts = tuple(part for part in normal.split("/") if part not in ("", "."))
    if not parts or ".." in parts:
        return None
    return parts


def _probe(root: str, parts: tuple[str, ...]) -> Probe | _Rejected:
    """Find the file and read its header: format, displayed size, EXIF orientation.

    JPEG and PNG headers are read directly (`pictrain.data.headers`); other formats, and
    files that reader is unsure of, go through Pillow (`_probe_with_pillow`).
    """
    path = root + "/".join(parts)
    opened = _open_file(path)
    if opened is None and len(parts) > 1:
        path = root + parts[-1]  # a flat download of a foldered export
        opened = _open_file(path)
    if opened is None:
        return _Rejected(True, "no such file")
    if type(opened) is _Rejected:
        return opened
    fd, size = opened
    try:
        header = read_header(fd, size)
    except OSError:
        header = None  # Pillow will say what is wrong
    finally:
        os.close(fd)
    if header is None:
        return _probe_with_pillow(path)
    return _checked(path, header.format, header.width, header.height, 1)


def _open_file(path: str) -> tuple[int, int] | _Rejected | None:
    """(descriptor, size) of the regular file at `path`; None when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        return _Rejected(False, _unreadable(err))
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return None
    return fd, info.st_size


def _probe_with_pillow(path: str) -> Probe | _Rejected:
    """Pillow's view: verify, then the header. Only images that will be rotated, or JPEGs
    that do not end with their end marker, are decoded in full: where damage is likely."""
    try:
        with Image.open(path) as image:
            image.verify()  # must come first: it needs the file just opened
        with Image.open(path) as image:
            image_format = image.format or ""
            width, height = image.size
            orientation = image.getexif().get(ORIENTATION, 1)
            if orientation not in (2, 3, 4, 5, 6, 7, 8):
                orientation = 1
            if orientation != 1 or (image_format in ("JPEG", "MPO") and not _ends_with_eoi(path)):
                image.load()
    except UnidentifiedImageError:
        return _Rejected(False, "not an image Pillow can read")
    except Exception as err:  # Pillow raises many types for a broken file; all mean "corrupt"
        return _Rejected(False, _unreadable(err))
    return _checked(path, image_format, width, height, orientation)


def _checked(
    path: str, image_format: str, width: int, height: int, orientation: int
) -> Probe | _Rejected:
    if image_format not in FORMAT_SUFFIX:
        return _Rejected(False, f"unsupported format {image_format}")
    if min(width, height) < MIN_SIDE:
        return _Rejected(False, f"smaller than {MIN_SIDE} px")
    if orientation >= 5:  # 90 or 270 degrees: width and height swap
        width, height = height, width
    return Probe(path, image_format, width, height, orientation)


def _unreadable(err: Exception) -> str:
    return f"unreadable: {str(err)[:60] or type(err).__name__}"


def _ends_with_eoi(path: str) -> bool:
    with open(path, "rb") as file:
        file.seek(-2, os.SEEK_END)
        return file.read() == b"\xff\xd9"


class _Namer:
    """Flat, unique output names: sub-folders joined by '__'; a clash gets the image id."""

    def __init__(self) -> None:
        self._taken: set[str] = set()  # case-folded stems: labels are found by stem
        self.renamed = 0

    def name_for(self, parts: tuple[str, ...], image_id: int, fallback_suffix: str) -> str:
        flat = "__".join(parts)
        suffix = _suffix(parts[-1])
        suffix = suffix if suffix.lower() in IMAGE_SUFFIXES else ""
        stem = flat[: len(flat) - len(suffix)]
        candidate, attempt = stem, 0
        while candidate.casefold() in self._taken:
            attempt += 1
            candidate = f"{stem}_{image_id}" + (f"_{attempt}" if attempt > 1 else "")
        self._taken.add(candidate.casefold())
        self.renamed += attempt > 0
        return candidate + (suffix or fallback_suffix)


def _suffix(name: str) -> str:
    """The file name's suffix as pathlib gives it ("" for ".hidden" or "name.")."""
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


def write_labels(path: str, text: str, labels: int, summary: ConversionSummary) -> None:
    """An image's label file holding `labels` lines (none: a background image)."""
    _write_file(path, text.encode())
    summary.labels_written += labels
    summary.background_images += not labels


def _place(probe: Probe, dest: str, summary: ConversionSummary) -> None:
    """Place the image: linked, copied or rotated; count what it took."""
    if probe.orientation != 1:
        _write_rotated(probe, dest)
        summary.images_rotated += 1
        return
    try:
        os.link(probe.path, dest)
    except OSError:  # another filesystem, or one without hard links
        shutil.copyfile(probe.path, dest)
        summary.images_copied += 1


def _write_file(path: str, data: bytes) -> None:
    """A new file holding `data`: the few system calls `open()` would wrap in objects."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _write_rotated(probe: Probe, dest: str) -> None:
    """The pixels as displayed, saved without EXIF: every loader then sees the annotated frame.

    Annotations are not rotated: the platform draws them on the displayed image already.
    """
    with Image.open(probe.path) as image:
        upright = ImageOps.exif_transpose(image)
        image_format = "JPEG" if probe.format == "MPO" else probe.format
        options: dict[str, object] = {}
        if image_format in ("JPEG", "WEBP"):
            options["quality"] = 95
        if icc := image.info.get("icc_profile"):
            options["icc_profile"] = icc
        upright.save(dest, format=image_format, **options)
