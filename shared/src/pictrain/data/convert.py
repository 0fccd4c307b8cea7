"""COCO -> the three ultralytics dataset layouts; every fix and every drop is counted.

The image pass (find, validate, name, link or rotate: `pictrain.data.images`) is shared; each
task only says where an image goes and what its labels say:

- detect:   `out_root/images/<split>/<name>`, `out_root/labels/<split>/<stem>.txt` with one
            `cls cx cy w h` line per box (normalised, 6 decimals), empty for background images;
- segment:  the same folders, one `cls x1 y1 x2 y2 ...` line per object (`pictrain.data.polygons`
            has the rules that make one polygon of an object);
- classify: `out_root/<split>/<class folder>/<name>` (`labels.class_folders`), one class per
            image; ultralytics takes `out_root` itself as `data`, not a data.yaml.

In every task crowd annotations and annotations of a category not in `names` are dropped and
counted. Coordinates are in the displayed (EXIF-applied) frame, which is the frame the written
image copy has.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import yaml

from pictrain.data.coco import CocoAnnotation, CocoIndex, load_coco
from pictrain.data.images import Placement, Plan, SourceImage, convert_images, prepare_output
from pictrain.data.labels import class_folders, class_index
from pictrain.data.polygons import CLIP_TOLERANCE, object_shape
from pictrain.data.splits import SPLITS
from pictrain.data.summary import ConversionSummary


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

    The split's folders are replaced, so running it again gives the same result.
    """
    index = _index(coco, split, names, keep_segmentation=False)
    classes = class_index(index.categories, names)

    def plan(source: SourceImage, summary: ConversionSummary) -> Placement:
        return _labelled(source, out_root, split, _box_lines(source, classes, summary))

    return _convert_labelled(index, images_dir, out_root, split, "detect", plan, workers)


def convert_segmentation(
    coco: Path | CocoIndex,
    images_dir: Path,
    out_root: Path,
    split: str,
    names: Sequence[str],
    *,
    workers: int = 8,
) -> ConversionSummary:
    """Write one split in YOLO segmentation layout under `out_root`: one polygon per object.

    A `CocoIndex` must have been loaded with `keep_segmentation=True`.
    """
    index = _index(coco, split, names, keep_segmentation=True)
    classes = class_index(index.categories, names)

    def plan(source: SourceImage, summary: ConversionSummary) -> Placement:
        return _labelled(source, out_root, split, _polygon_lines(source, classes, summary))

    return _convert_labelled(index, images_dir, out_root, split, "segment", plan, workers)


def convert_classification(
    coco: Path | CocoIndex,
    images_dir: Path,
    out_root: Path,
    split: str,
    names: Sequence[str],
    *,
    workers: int = 8,
) -> ConversionSummary:
    """Write one split as ultralytics class folders, `out_root/<split>/<class folder>/<name>`.

    An image's class is the category of its annotations (their boxes do not matter); images
    with none, or with several different ones, are dropped and counted. Every class gets its
    folder, empty or not, so all splits have the same classes.
    """
    index = _index(coco, split, names, keep_segmentation=False)
    classes = class_index(index.categories, names)
    split_dir = out_root / split
    prepare_output(images_dir, [split_dir], out_root / f"{split}.cache")
    folders = [split_dir / folder for folder in class_folders(names)]
    for folder in folders:
        folder.mkdir()
    counts = [0] * len(names)

    def plan(source: SourceImage, summary: ConversionSummary) -> Placement | None:
        found = {cls for cls, _ in _known(source.annotations, classes, summary)}
        if len(found) != 1:
            summary.images_unlabelled += not found
            summary.images_ambiguous += len(found) > 1
            kind = "ambiguous images" if found else "unlabelled images"
            summary.note(kind, source.image.file_name)
            return None
        cls = found.pop()
        counts[cls] += 1
        return Placement(source.probe, folders[cls] / source.name)

    summary = _summary(index, split, "classify")
    convert_images(index, images_dir, summary, plan, workers)
    summary.labels_written = summary.images_written
    summary.empty_classes = [name for name, count in zip(names, counts, strict=True) if not count]
    return summary


def write_data_yaml(out_root: Path, names: Sequence[str], splits: Iterable[str]) -> Path:
    """ultralytics `data.yaml` for converted detect/segment splits. train is required;
    ultralytics also needs a val, so a train split converted alone is validated on itself."""
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


def _index(
    coco: Path | CocoIndex, split: str, names: Sequence[str], *, keep_segmentation: bool
) -> CocoIndex:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    if not names or len(set(names)) != len(names):
        raise ValueError(f"names must be a non-empty list without repeats: {list(names)}")
    if not isinstance(coco, CocoIndex):
        return load_coco(coco, keep_segmentation=keep_segmentation)
    if keep_segmentation and not coco.segmentation_kept:
        raise ValueError(f"{coco.path} was loaded without keep_segmentation=True")
    return coco


def _summary(index: CocoIndex, split: str, task: str) -> ConversionSummary:
    return ConversionSummary(
        split=split,
        task=task,
        images_in=len(index.images),
        annotations_unknown_image=index.orphan_annotations,
        annotations_malformed=index.malformed_annotations,
        images_malformed=index.malformed_images,
        images_duplicate_id=index.duplicate_images,
    )


def _convert_labelled(
    index: CocoIndex,
    images_dir: Path,
    out_root: Path,
    split: str,
    task: str,
    plan: Plan,
    workers: int,
) -> ConversionSummary:
    """The detect / segment layout: images and label files side by side."""
    image_dir, label_dir = out_root / "images" / split, out_root / "labels" / split
    prepare_output(images_dir, [image_dir, label_dir], out_root / "labels" / f"{split}.cache")
    summary = _summary(index, split, task)
    placements = convert_images(index, images_dir, summary, plan, workers)
    summary.background_images = sum(1 for p in placements if not p.lines)
    summary.labels_written = sum(len(p.lines) for p in placements)
    return summary


def _labelled(source: SourceImage, out_root: Path, split: str, lines: list[str]) -> Placement:
    image_dest = out_root / "images" / split / source.name
    label_dest = out_root / "labels" / split / f"{source.stem}.txt"
    return Placement(source.probe, image_dest, label_dest, tuple(lines))


def _known(
    annotations: Iterable[CocoAnnotation], classes: dict[int, int], summary: ConversionSummary
) -> Iterator[tuple[int, CocoAnnotation]]:
    """(class index, annotation) of the usable ones; unknown categories and crowds counted."""
    for annotation in annotations:
        cls = classes.get(annotation.category_id)
        if cls is None:
            summary.annotations_unknown_category += 1
        elif annotation.iscrowd:
            summary.annotations_crowd += 1
        else:
            yield cls, annotation


def _box_lines(
    source: SourceImage, classes: dict[int, int], summary: ConversionSummary
) -> list[str]:
    width, height = source.probe.width, source.probe.height
    lines = []
    for cls, annotation in _known(source.annotations, classes, summary):
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


def _polygon_lines(
    source: SourceImage, classes: dict[int, int], summary: ConversionSummary
) -> list[str]:
    width, height = source.probe.width, source.probe.height
    scale = np.array([width, height], dtype=np.float64)
    lines = []
    for cls, annotation in _known(source.annotations, classes, summary):
        shape = object_shape(annotation.segmentation, width, height)
        summary.parts_degenerate += shape.parts_dropped
        summary.holes_filled += shape.holes_filled
        if shape.polygon is None:
            summary.objects_without_shape += 1
            reason = shape.problem or "every part degenerate"
            summary.note("objects without a usable shape", f"{source.image.file_name} ({reason})")
            continue
        summary.polygons_clipped += shape.clipped
        summary.objects_merged += shape.parts > 1
        coordinates = " ".join(f"{v:.6f}" for v in (shape.polygon / scale).ravel())
        lines.append(f"{cls} {coordinates}")
    return lines
