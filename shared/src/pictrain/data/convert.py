"""COCO detection -> ultralytics YOLO layout; every fix and every drop is counted in a summary.

Output: `out_root/images/<split>/<name>` (hard links, or rotated copies for EXIF-oriented
images) and `out_root/labels/<split>/<stem>.txt` with `cls cx cy w h` normalised lines, one
label file per image, empty for background images.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml
from PIL import Image, ImageOps, UnidentifiedImageError

from pictrain.data.coco import CocoAnnotation, CocoImage, CocoIndex, load_coco
from pictrain.data.labels import class_index
from pictrain.errors import UserError

SPLITS = ("train", "val", "test")
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
CLIP_TOLERANCE = 1e-3  # pixels; float noise at the border is clamped without being reported
EXAMPLES = 3
ORIENTATION = 0x0112
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass
class ConversionSummary:
    """What one split's conversion wrote, fixed and dropped; `str()` is a short report."""

    split: str
    images_in: int = 0
    images_written: int = 0
    background_images: int = 0  # written with an empty label file
    boxes_written: int = 0
    # fixed
    boxes_clipped: int = 0
    images_rotated: int = 0  # EXIF orientation applied to the pixels
    sizes_from_file: int = 0  # JSON width/height disagreed with the file
    images_renamed: int = 0  # same flattened stem as another image
    images_copied: int = 0  # hard link impossible (other filesystem)
    # dropped
    boxes_outside: int = 0
    boxes_degenerate: int = 0  # NaN, negative, or under 1 px after clipping
    boxes_crowd: int = 0
    boxes_unknown_category: int = 0
    boxes_unknown_image: int = 0
    boxes_malformed: int = 0  # annotation without integer image_id/category_id
    boxes_of_dropped_images: int = 0
    images_malformed: int = 0  # image entry without integer id or file_name
    images_duplicate_id: int = 0
    images_unsafe_name: int = 0  # absolute, or climbing out with '..'
    images_missing: int = 0
    images_corrupt: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)
    # converted file name -> COCO file_name, only where they differ
    source_names: dict[str, str] = field(default_factory=dict, repr=False)

    def source_name(self, converted: str) -> str:
        """The platform's file name of a converted image (evaluations are keyed by it)."""
        return self.source_names.get(converted, converted)

    def note(self, kind: str, example: str) -> None:
        examples = self.examples.setdefault(kind, [])
        if len(examples) < EXAMPLES:
            examples.append(example)

    def drop_image(self, missing: bool, example: str) -> None:
        if missing:
            self.images_missing += 1
        else:
            self.images_corrupt += 1
        self.note("missing images" if missing else "corrupt images", example)

    def __str__(self) -> str:
        lines = [
            f"{self.split}: {self.images_written} of {self.images_in} images written "
            f"({self.background_images} background), {self.boxes_written} boxes"
        ]
        fixed = {
            "boxes clipped to the image": self.boxes_clipped,
            "images rotated to their EXIF orientation": self.images_rotated,
            "image sizes taken from the file": self.sizes_from_file,
            "images renamed (same name as another)": self.images_renamed,
            "images copied (no hard link possible)": self.images_copied,
        }
        dropped = {
            "boxes outside the image": self.boxes_outside,
            "degenerate boxes": self.boxes_degenerate,
            "crowd boxes": self.boxes_crowd,
            "boxes of unknown category": self.boxes_unknown_category,
            "boxes of unknown image id": self.boxes_unknown_image,
            "malformed annotations": self.boxes_malformed,
            "boxes of dropped images": self.boxes_of_dropped_images,
            "malformed image entries": self.images_malformed,
            "images with a duplicate id": self.images_duplicate_id,
            "unsafe file names": self.images_unsafe_name,
            "missing images": self.images_missing,
            "corrupt images": self.images_corrupt,
        }
        for title, counts in (("fixed", fixed), ("dropped", dropped)):
            items = [f"{count} {what}" for what, count in counts.items() if count]
            if items:
                lines.append(f"  {title}: {', '.join(items)}")
        for kind, names in self.examples.items():
            lines.append(f"  {kind}, e.g.: {'; '.join(names)}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _Probe:
    path: Path
    format: str
    width: int  # as displayed, EXIF orientation applied
    height: int
    orientation: int  # 1 = none


@dataclass(frozen=True, slots=True)
class _Rejected:
    missing: bool  # else unreadable or unusable
    reason: str


@dataclass(frozen=True, slots=True)
class _Job:
    probe: _Probe
    image_dest: Path
    label_dest: Path
    lines: list[str]


def convert_detection(
    coco: Path | CocoIndex,
    images_dir: Path,
    out_root: Path,
    split: str,
    names: Sequence[str],
    *,
    workers: int = 8,
) -> ConversionSummary:
    """Write one split in YOLO detection layout under `out_root`; class i is `names[i]`.

    The split's two folders are replaced, so running it again gives the same result.
    """
    index = coco if isinstance(coco, CocoIndex) else load_coco(coco)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    if not names or len(set(names)) != len(names):
        raise ValueError(f"names must be a non-empty list without repeats: {list(names)}")
    image_dir, label_dir = out_root / "images" / split, out_root / "labels" / split
    _prepare_output(images_dir, image_dir, label_dir, out_root / "labels" / f"{split}.cache")
    summary = ConversionSummary(
        split=split,
        images_in=len(index.images),
        boxes_unknown_image=index.orphan_annotations,
        boxes_malformed=index.malformed_annotations,
        images_malformed=index.malformed_images,
        images_duplicate_id=index.duplicate_images,
    )
    located = _locate(index, summary)
    classes = class_index(index.categories, names)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        probes = pool.map(lambda item: _probe(images_dir, item[1]), located)
        namer = _Namer()
        jobs = []
        for (image, relative), probe in zip(located, probes, strict=True):
            annotations = index.annotations_of(image.id)
            if isinstance(probe, _Rejected):
                summary.drop_image(probe.missing, f"{image.file_name} ({probe.reason})")
                summary.boxes_of_dropped_images += len(annotations)
                continue
            declared = (image.width, image.height)
            if all(declared) and declared != (probe.width, probe.height):
                summary.sizes_from_file += 1
            name = namer.name_for(relative, image.id, FORMAT_SUFFIX[probe.format])
            if name != image.file_name:
                summary.source_names[name] = image.file_name
            lines = _label_lines(annotations, probe.width, probe.height, classes, summary)
            stem = name.rsplit(".", 1)[0]
            jobs.append(_Job(probe, image_dir / name, label_dir / f"{stem}.txt", lines))
        outcomes = list(pool.map(_write, jobs))

    summary.images_written = len(jobs)
    summary.images_renamed = namer.renamed
    summary.images_rotated = outcomes.count("rotated")
    summary.images_copied = outcomes.count("copied")
    summary.background_images = sum(1 for job in jobs if not job.lines)
    summary.boxes_written = sum(len(job.lines) for job in jobs)
    if not jobs:
        raise UserError(f"the {split} split has 0 usable images\n{summary}")
    return summary


def write_data_yaml(out_root: Path, names: Sequence[str], splits: Iterable[str]) -> Path:
    """ultralytics `data.yaml` for the converted splits. train is required; ultralytics also
    needs a val, so a train split converted alone is validated on itself."""
    present = set(splits)
    if "train" not in present or not present <= set(SPLITS):
        raise ValueError(f"splits must include train, within {SPLITS}: {sorted(present)}")
    data: dict[str, object] = {"path": str(out_root.resolve())}
    data.update({split: f"images/{split}" for split in SPLITS if split in present})
    data.setdefault("val", "images/train")
    data["names"] = dict(enumerate(names))
    dest = out_root / "data.yaml"
    out_root.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return dest


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
            summary.boxes_of_dropped_images += len(index.annotations_of(image.id))
            summary.note("unsafe file names", image.file_name)
        else:
            located.append((image, relative))
    return located


def _prepare_output(source: Path, image_dir: Path, label_dir: Path, cache: Path) -> None:
    """Empty this split's output folders (a rerun must not keep stale files), never the source."""
    resolved = source.resolve()
    for folder in (image_dir, label_dir):
        if resolved == folder.resolve() or folder.resolve() in resolved.parents:
            raise UserError(f"output folder {folder} would overwrite the source images {source}")
    for folder in (image_dir, label_dir):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    cache.unlink(missing_ok=True)  # ultralytics' label cache of a previous conversion


def _probe(images_dir: Path, relative: PurePosixPath) -> _Probe | _Rejected:
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
    return _Probe(path, image_format, width, height, orientation)


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


def _label_lines(
    annotations: Iterable[CocoAnnotation],
    width: int,
    height: int,
    classes: dict[int, int],
    summary: ConversionSummary,
) -> list[str]:
    lines = []
    for annotation in annotations:
        cls = classes.get(annotation.category_id)
        if cls is None:
            summary.boxes_unknown_category += 1
            continue
        if annotation.iscrowd:
            summary.boxes_crowd += 1
            continue
        x, y, w, h = annotation.bbox
        if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
            summary.boxes_degenerate += 1
            continue
        x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, width), min(y + h, height)
        if x2 <= x1 or y2 <= y1:
            summary.boxes_outside += 1
            continue
        if x2 - x1 < 1 or y2 - y1 < 1:
            summary.boxes_degenerate += 1
            continue
        overflow = max(-x, -y, x + w - width, y + h - height)
        summary.boxes_clipped += overflow > CLIP_TOLERANCE
        cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
        bw, bh = (x2 - x1) / width, (y2 - y1) / height
        lines.append(f"{cls} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
    return lines


def _write(job: _Job) -> str:
    """Place the image (linked, copied or rotated) and its label file; say which it was."""
    job.label_dest.write_text("".join(f"{line}\n" for line in job.lines), encoding="utf-8")
    probe = job.probe
    if probe.orientation != 1:
        _write_rotated(probe, job.image_dest)
        return "rotated"
    try:
        os.link(probe.path, job.image_dest)
        return "linked"
    except OSError:  # another filesystem, or one without hard links
        shutil.copyfile(probe.path, job.image_dest)
        return "copied"


def _write_rotated(probe: _Probe, dest: Path) -> None:
    """The pixels as displayed, saved without EXIF: every loader then sees the annotated frame."""
    with Image.open(probe.path) as image:
        upright = ImageOps.exif_transpose(image)
        image_format = "JPEG" if probe.format == "MPO" else probe.format
        options: dict[str, object] = {}
        if image_format in ("JPEG", "WEBP"):
            options["quality"] = 95
        if icc := image.info.get("icc_profile"):
            options["icc_profile"] = icc
        upright.save(dest, format=image_format, **options)
