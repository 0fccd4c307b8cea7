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

import itertools
import operator
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import yaml

from pictrain.data.coco import NAN_BOX, CocoAnnotation, CocoIndex, load_coco
from pictrain.data.decimals import label_files
from pictrain.data.images import SourceImage, convert_images, prepare_output, write_labels
from pictrain.data.labels import class_folders, class_index
from pictrain.data.polygons import CLIP_TOLERANCE, Flat, object_shape, plain_polygons
from pictrain.data.summary import ConversionSummary
from pictrain.splitnames import SPLITS


def convert_detection(
    coco: Path | CocoIndex,
    images_dir: Path,
    out_root: Path,
    split: str,
    names: Sequence[str],
) -> ConversionSummary:
    """Write one split in YOLO detection layout under `out_root`; class i is `names[i]`.

    The split's folders are replaced, so running it again gives the same result.
    """
    index = _index(coco, split, names, keep_segmentation=False)
    return _convert_labelled(index, images_dir, out_root, split, names, "detect", _box_lines)


def convert_segmentation(
    coco: Path | CocoIndex,
    images_dir: Path,
    out_root: Path,
    split: str,
    names: Sequence[str],
) -> ConversionSummary:
    """Write one split in YOLO segmentation layout under `out_root`: one polygon per object.

    A `CocoIndex` must have been loaded with `keep_segmentation=True`.
    """
    index = _index(coco, split, names, keep_segmentation=True)
    return _convert_labelled(index, images_dir, out_root, split, names, "segment", _polygon_lines)


def convert_classification(
    coco: Path | CocoIndex,
    images_dir: Path,
    out_root: Path,
    split: str,
    names: Sequence[str],
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
    prefixes = [os.path.join(folder, "") for folder in folders]
    counts = [0] * len(names)

    def plan(source: SourceImage, summary: ConversionSummary) -> str | None:
        found = {cls for cls, _ in _known(source.annotations, classes, summary)}
        if len(found) != 1:
            summary.images_unlabelled += not found
            summary.images_ambiguous += len(found) > 1
            kind = "ambiguous images" if found else "unlabelled images"
            summary.note(kind, source.image.file_name)
            return None
        cls = found.pop()
        counts[cls] += 1
        return prefixes[cls] + source.name

    summary = _summary(index, split, "classify")
    convert_images(index, images_dir, summary, plan)
    summary.labels_written = summary.images_written
    summary.class_counts = dict(zip(names, counts, strict=True))
    summary.empty_classes = [name for name, count in summary.class_counts.items() if not count]
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


# Builds the label files of a batch of images: (text, lines) of each, counting into the summary
# and the class counts.
Labeller = Callable[
    [list[SourceImage], dict[int, int], ConversionSummary, list[int]], list[tuple[str, int]]
]
# Images whose labels are built together: numpy's cost per call is shared by their thousands
# of coordinates, and a batch's texts are a few hundred kilobytes at most.
BATCH = 512


def _convert_labelled(
    index: CocoIndex,
    images_dir: Path,
    out_root: Path,
    split: str,
    names: Sequence[str],
    task: str,
    labeller: Labeller,
) -> ConversionSummary:
    """The detect / segment layout: images and label files side by side."""
    image_dir, label_dir = out_root / "images" / split, out_root / "labels" / split
    prepare_output(images_dir, [image_dir, label_dir], out_root / "labels" / f"{split}.cache")
    image_prefix, label_prefix = os.path.join(image_dir, ""), os.path.join(label_dir, "")
    classes = class_index(index.categories, names)
    counts = [0] * len(names)
    batch: list[SourceImage] = []

    def write_batch() -> None:
        for source, (text, lines) in zip(
            batch, labeller(batch, classes, summary, counts), strict=True
        ):
            write_labels(f"{label_prefix}{source.stem}.txt", text, lines, summary)
        batch.clear()

    def plan(source: SourceImage, summary: ConversionSummary) -> str:
        batch.append(source)
        if len(batch) == BATCH:
            write_batch()
        return image_prefix + source.name

    summary = _summary(index, split, task)
    convert_images(index, images_dir, summary, plan)
    write_batch()
    summary.class_counts = dict(zip(names, counts, strict=True))
    return summary


def _known(
    annotations: Iterable[CocoAnnotation], classes: dict[int, int], summary: ConversionSummary
) -> list[tuple[int, CocoAnnotation]]:
    """(class index, annotation) of the usable ones; unknown categories and crowds counted."""
    known = []
    for annotation in annotations:
        cls = classes.get(annotation.category_id)
        if cls is None:
            summary.annotations_unknown_category += 1
        elif annotation.iscrowd:
            summary.annotations_crowd += 1
        else:
            known.append((cls, annotation))
    return known


def _box_lines(
    sources: list[SourceImage],
    classes: dict[int, int],
    summary: ConversionSummary,
    counts: list[int],
) -> list[tuple[str, int]]:
    """`cls cx cy w h` per usable box, normalised; the batch's boxes checked and formatted
    together, each rule a numpy mask over all of them.

    A box is counted by the first rule it breaks, in `_known`'s order then the box rules:
    unknown category, crowd, no box, not finite or not of positive size, outside the image once
    clipped, under 1 px once clipped; clipped by more than CLIP_TOLERANCE is counted and kept.
    """
    annotations = [annotation for source in sources for annotation in source.annotations]
    if not annotations:
        return [("", 0)] * len(sources)
    category_ids, bboxes, crowds, _, _ = zip(*annotations, strict=True)
    image = np.repeat(np.arange(len(sources)), [len(source.annotations) for source in sources])
    frame = np.array([(s.probe.width, s.probe.height) for s in sources], np.float64)[image]
    n = len(annotations)
    cls = np.fromiter(map(classes.get, category_ids, itertools.repeat(-1)), np.int64, n)
    missing = np.fromiter(map(operator.is_, bboxes, itertools.repeat(NAN_BOX)), bool, n)
    boxes = np.fromiter(itertools.chain.from_iterable(bboxes), np.float64, 4 * n).reshape(n, 4)
    x, y, w, h = boxes.T
    width, height = frame[:, 0], frame[:, 1]
    unknown, usable = _split(np.ones(len(cls), bool), cls < 0)
    crowd, usable = _split(usable, np.fromiter(crowds, bool, n))
    summary.annotations_unknown_category += unknown
    summary.annotations_crowd += crowd
    no_box, usable = _split(usable, missing)
    summary.boxes_missing += no_box
    # Arithmetic on the boxes already dropped may overflow or give NaN: it is not used.
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(boxes).all(axis=1) & (w > 0) & (h > 0)
        not_finite, usable = _split(usable, ~finite)
        right, bottom = x + w, y + h
        x1, y1 = np.where(x > 0.0, x, 0.0), np.where(y > 0.0, y, 0.0)
        x2, y2 = np.where(right < width, right, width), np.where(bottom < height, bottom, height)
        outside, usable = _split(usable, (x2 <= x1) | (y2 <= y1))
        small, usable = _split(usable, (x2 - x1 < 1) | (y2 - y1 < 1))
        clipped = (x1 - x > CLIP_TOLERANCE) | (y1 - y > CLIP_TOLERANCE)
        clipped |= (right - x2 > CLIP_TOLERANCE) | (bottom - y2 > CLIP_TOLERANCE)
    summary.boxes_degenerate += not_finite + small
    summary.boxes_outside += outside
    summary.boxes_clipped += int(np.count_nonzero(usable & clipped))
    kept = cls[usable]
    for i, count in enumerate(np.bincount(kept, minlength=len(counts)).tolist()):
        counts[i] += count
    width, height = width[usable], height[usable]
    x1, y1, x2, y2 = x1[usable], y1[usable], x2[usable], y2[usable]
    values = np.stack(
        [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height],
        axis=1,
    )
    per_image = np.bincount(image[usable], minlength=len(sources)).tolist()
    texts = label_files(kept, np.full(len(kept), 4), values, per_image)
    return list(zip(texts, per_image, strict=True))


def _split(usable: np.ndarray, broken: np.ndarray) -> tuple[int, np.ndarray]:
    """How many usable entries break a rule, and those that do not."""
    dropped = usable & broken
    return int(np.count_nonzero(dropped)), usable & ~dropped


def _polygon_lines(
    sources: list[SourceImage],
    classes: dict[int, int],
    summary: ConversionSummary,
    counts: list[int],
) -> list[tuple[str, int]]:
    """`cls x1 y1 x2 y2 ...` per object with a usable shape, normalised; the batch's numbers
    formatted together.

    Plain polygons (`plain_polygons`, checked for the whole batch at once) are taken as
    written; only the others go through `object_shape`, one at a time.
    """
    known = [
        (i, cls, annotation)
        for i, source in enumerate(sources)
        for cls, annotation in _known(source.annotations, classes, summary)
    ]
    frames = np.array([(s.probe.width, s.probe.height) for s in sources], np.float64)
    frames = frames.reshape(-1, 2)[[i for i, _, _ in known]]
    points, plain = plain_polygons([annotation.segmentation for _, _, annotation in known], frames)
    lines: list[int] = []  # the class of each line
    polygons: list[Flat] = []
    kept: list[bool] = []  # for each known object, whether it has a line
    per_image = [0] * len(sources)
    for (i, cls, annotation), as_written in zip(known, plain, strict=True):
        if as_written:
            polygon = annotation.segmentation[0]
        else:
            source = sources[i]
            shape = object_shape(annotation.segmentation, source.probe.width, source.probe.height)
            summary.parts_degenerate += shape.parts_dropped
            summary.holes_filled += shape.holes_filled
            if shape.polygon is None:
                summary.objects_without_shape += 1
                reason = shape.problem or "every part degenerate"
                summary.note(
                    "objects without a usable shape", f"{source.image.file_name} ({reason})"
                )
                kept.append(False)
                continue
            summary.polygons_clipped += shape.clipped
            summary.objects_merged += shape.parts > 1
            polygon = shape.polygon
        counts[cls] += 1
        per_image[i] += 1
        lines.append(cls)
        polygons.append(polygon)
        kept.append(True)
    sizes = np.array([len(polygon) for polygon in polygons], np.int64)
    if not all(plain):  # `points` are not (only) the lines' points
        points = np.array(list(itertools.chain.from_iterable(polygons)), np.float64)
        frames = frames[kept]
    normalised = points.reshape(-1, 2) / np.repeat(frames, sizes // 2, axis=0)
    texts = label_files(np.array(lines, np.int64), sizes, normalised, per_image)
    return list(zip(texts, per_image, strict=True))
