"""The image pass every task shares: find each COCO image, check it, name it, place it.

A task only decides where a usable image goes and what its label file says (`Plan`); finding,
validating (unsafe names, missing, corrupt, too small, EXIF orientation, size mismatch), naming,
linking or rotating, and counting all of it happen here, once for the three tasks.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image, ImageOps, UnidentifiedImageError

from pictrain.data.coco import CocoAnnotation, CocoImage, CocoIndex
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


@dataclass(frozen=True, slots=True)
class Probe:
    path: Path
    format: str
    width: int  # as displayed, EXIF orientation applied: the frame the annotations are in
    height: int
    orientation: int  # 1 = none


@dataclass(frozen=True, slots=True)
class SourceImage:
    """An image that passed every check, with its unique flat output name."""

    image: CocoImage
    probe: Probe
    name: str
    annotations: list[CocoAnnotation]

    @property
    def stem(self) -> str:
        return self.name.rsplit(".", 1)[0]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a task puts one image, and its label file (None: the task writes none)."""

    probe: Probe
    image_dest: Path
    label_dest: Path | None = None
    lines: tuple[str, ...] = ()


# A task's decision for one usable image; None drops it (the task counts why).
Plan = Callable[[SourceImage, ConversionSummary], Placement | None]


@dataclass(frozen=True, slots=True)
class _Rejected:
    missing: bool  # else unreadable or unusable
    reason: str


def convert_images(
    index: CocoIndex, images_dir: Path, summary: ConversionSummary, plan: Plan, workers: int
) -> list[Placement]:
    """Run the pass: probe in parallel, let `plan` decide per image, then write in parallel."""
    located = _locate(index, summary)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        probes = pool.map(lambda item: _probe(images_dir, item[1]), located)
        placements = []
        for source in _usable(located, probes, index, summary):
            placement = plan(source, summary)
            if placement is not None:
                placements.append(placement)
                summary.written[source.image.id] = source.name
        outcomes = list(pool.map(_write, placements))
    summary.images_written = len(placements)
    summary.images_rotated = outcomes.count("rotated")
    summary.images_copied = outcomes.count("copied")
    if not placements:
        raise UserError(f"the {summary.split} split has 0 usable images\n{summary}")
    return placements


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


def safe_relative(file_name: str) -> PurePosixPath | None:
    """`file_name` as a path inside the images folder; None if absolute or climbing out."""
    normal = file_name.replace("\\", "/")
    if "\x00" in normal or normal.startswith("/") or _DRIVE.match(normal):
        return None
    parts = [part for part in normal.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return PurePosixPath(*parts)


def _locate(index: CocoIndex, summary: ConversionSummary) -> list[tuple[CocoImage, PurePosixPath]]:
    """Images whose file name stays inside the images folder; the others are dropped."""
    located = []
    for image in index.images.values():
        relative = safe_relative(image.file_name)
        if relative is None:
            summary.images_unsafe_name += 1
            summary.annotations_of_dropped_images += len(index.annotations_of(image.id))
            summary.note("unsafe file names", image.file_name)
        else:
            located.append((image, relative))
    return located


def _usable(
    located: list[tuple[CocoImage, PurePosixPath]],
    probes: Iterator[Probe | _Rejected],
    index: CocoIndex,
    summary: ConversionSummary,
) -> Iterator[SourceImage]:
    namer = _Namer()
    for (image, relative), probe in zip(located, probes, strict=True):
        annotations = index.annotations_of(image.id)
        if isinstance(probe, _Rejected):
            summary.drop_image(probe.missing, f"{image.file_name} ({probe.reason})")
            summary.annotations_of_dropped_images += len(annotations)
            continue
        declared = (image.width, image.height)
        if all(declared) and declared != (probe.width, probe.height):
            summary.sizes_from_file += 1
        name = namer.name_for(relative, image.id, FORMAT_SUFFIX[probe.format])
        if name != image.file_name:
            summary.source_names[name] = image.file_name
        yield SourceImage(image, probe, name, annotations)
    summary.images_renamed = namer.renamed


def _probe(images_dir: Path, relative: PurePosixPath) -> Probe | _Rejected:
    """Find the file and read its header: format, displayed size, EXIF orientation.

    Only images that will be rotated, or JPEGs that do not end with their end marker, are
    decoded in full: a fast check for the many, a thorough one where damage is likely.
    """
    path = images_dir / relative
    if not path.is_file() and len(relative.parts) > 1:
        path = images_dir / relative.name  # a flat download of a foldered export
    if not path.is_file():
        return _Rejected(True, "no such file")
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
        return _Rejected(False, f"unreadable: {str(err)[:60] or type(err).__name__}")
    if image_format not in FORMAT_SUFFIX:
        return _Rejected(False, f"unsupported format {image_format}")
    if min(width, height) < MIN_SIDE:
        return _Rejected(False, f"smaller than {MIN_SIDE} px")
    if orientation >= 5:  # 90 or 270 degrees: width and height swap
        width, height = height, width
    return Probe(path, image_format, width, height, orientation)


def _ends_with_eoi(path: Path) -> bool:
    with path.open("rb") as file:
        file.seek(-2, os.SEEK_END)
        return file.read() == b"\xff\xd9"


class _Namer:
    """Flat, unique output names: sub-folders joined by '__'; a clash gets the image id."""

    def __init__(self) -> None:
        self._taken: set[str] = set()  # case-folded stems: labels are found by stem
        self.renamed = 0

    def name_for(self, relative: PurePosixPath, image_id: int, fallback_suffix: str) -> str:
        flat = "__".join(relative.parts)
        suffix = relative.suffix if relative.suffix.lower() in IMAGE_SUFFIXES else ""
        stem = flat[: len(flat) - len(suffix)]
        candidate, attempt = stem, 0
        while candidate.casefold() in self._taken:
            attempt += 1
            candidate = f"{stem}_{image_id}" + (f"_{attempt}" if attempt > 1 else "")
        self._taken.add(candidate.casefold())
        self.renamed += attempt > 0
        return candidate + (suffix or fallback_suffix)


def _write(placement: Placement) -> str:
    """Place the image (linked, copied or rotated) and its label file; say which it was."""
    if placement.label_dest is not None:
        text = "".join(f"{line}\n" for line in placement.lines)
        placement.label_dest.write_text(text, encoding="utf-8")
    probe, dest = placement.probe, placement.image_dest
    if probe.orientation != 1:
        _write_rotated(probe, dest)
        return "rotated"
    try:
        os.link(probe.path, dest)
        return "linked"
    except OSError:  # another filesystem, or one without hard links
        shutil.copyfile(probe.path, dest)
        return "copied"


def _write_rotated(probe: Probe, dest: Path) -> None:
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
