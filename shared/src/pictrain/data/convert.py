"""COCO -> the ultralytics dataset layouts; every fix and every drop is counted.

The image pass (find, validate, name, link or rotate: `pictrain.data.images`) is shared; each
task only says where an image goes and what its labels say:

- detect:   `out_root/images/<split>/<name>`, `out_root/labels/<split>/<stem>.txt` with one
            `cls cx cy w h` line per box (normalised, 6 decimals), empty for background images;
- segment:  the same folders, one `cls x1 y1 x2 y2 ...` line per object (`pictrain.data.polygons`
            has the rules that make one polygon of an object);
- obb:      the same folders, one `cls x1 y1 ... x4 y4` line per object, the corners of its
            oriented box (`pictrain.data.obb`);
- pose:     the same folders, one `cls cx cy w h x1 y1 v1 ... xK yK vK` line per object
            (`pictrain.data.keypoints` has the rules that make its box and points);
- classify: `out_root/<split>/<class folder>/<name>` (`labels.class_folders`), one class per
            image; ultralytics takes `out_root` itself as `data`, not a data.yaml.

In every task crowd annotations and annotations of a category not in `names` are dropped and
counted. Coordinates are in the displayed (EXIF-applied) frame, which is the frame the written
image copy has.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import yaml

from pictrain.config import task_spec
from pictrain.data.boxes import box_array, clipped_boxes, drop
from pictrain.data.coco import CocoAnnotation, CocoIndex, load_coco
from pictrain.data.decimals import label_files
from pictrain.data.images import SourceImage, convert_images, prepare_output, write_labels
from pictrain.data.keypoints import PoseLayout, PoseOptions, batch_poses, resolve_layout
from pictrain.data.labels import class_folders, class_index, known_annotations
from pictrain.data.obb import object_rectangles
from pictrain.data.polygons import outlines
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
    index = _index(coco, split, names, "detect")
    return _convert_labelled(index, images_dir, out_root, split, names, "detect", _box_lines)


def convert_segmentation(
    coco: Path | CocoIndex,
    images_dir: Path,
    out_root: Path,
    split: str,
    names: Sequence[str],
) -> ConversionSummary:
    """Write one split in YOLO segmentation layout under `out_root`: one polygon per object.

    A `CocoIndex` must have been loaded keeping the segmentation.
    """
    index = _index(coco, split, names, "segment")
    return _convert_labelled(index, images_dir, out_root, split, names, "segment", _polygon_lines)


def convert_pose(
    coco: Path | CocoIndex,
    images_dir: Path,
    out_root: Path,
    split: str,
    names: Sequence[str],
    layout: PoseLayout | None = None,
) -> ConversionSummary:
    """Write one split in YOLO pose layout under `out_root`: one box and its K keypoints per
    object (`pictrain.data.keypoints`). `layout` is the dataset's (`resolve_layout`), by
    default this split's own with the default options. A `CocoIndex` must have been loaded
    keeping the keypoints."""
    index = _index(coco, split, names, "pose")
    if layout is None:
        layout = resolve_layout([index], names, PoseOptions())
    labeller = functools.partial(_pose_lines, layout=layout)
    return _convert_labelled(index, images_dir, out_root, split, names, "pose", labeller)


def convert_obb(
    coco: Path | CocoIndex,
    images_dir: Path,
    out_root: Path,
    split: str,
    names: Sequence[str],
) -> ConversionSummary:
    """Write one split in YOLO oriented-box layout under `out_root`: one rotated rectangle per
    object (`pictrain.data.obb`), from its outline, or from its box at angle 0.

    A `CocoIndex` must have been loaded keeping the segmentation.
    """
    index = _index(coco, split, names, "obb")
    return _convert_labelled(index, images_dir, out_root, split, names, "obb", _obb_lines)


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
    index = _index(coco, split, names, "classify")
    classes = class_index(index.categories, names)
    split_dir = out_root / split
    prepare_output(images_dir, [split_dir], out_root / f"{split}.cache")
    folders = [split_dir / folder for folder in class_folders(names)]
    for folder in folders:
        folder.mkdir()
    prefixes = [os.path.join(folder, "") for folder in folders]
    counts = [0] * len(names)

    def plan(source: SourceImage, summary: ConversionSummary) -> str | None:
        found = {cls for cls, _ in known_annotations(source.annotations, classes, summary)}
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


def write_data_yaml(
    out_root: Path,
    names: Sequence[str],
    splits: Iterable[str],
    keypoints: PoseLayout | None = None,
) -> Path:
    """ultralytics `data.yaml` for converted splits with label files (pose: with the point
    layout's keys). train is required; ultralytics also needs a val, so a train split converted
    alone is validated on itself."""
    present = set(splits)
    if "train" not in present or not present <= set(SPLITS):
        raise ValueError(f"splits must include train, within {SPLITS}: {sorted(present)}")
    data: dict[str, object] = {"path": str(out_root.resolve())}
    data.update({split: f"images/{split}" for split in SPLITS if split in present})
    data.setdefault("val", "images/train")
    data["names"] = dict(enumerate(names))
    if keypoints is not None:
        data.update(keypoints.data_yaml(len(names)))
    dest = out_root / "data.yaml"
    out_root.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return dest


def _index(coco: Path | CocoIndex, split: str, names: Sequence[str], task: str) -> CocoIndex:
    """The split's index, with the annotation fields `task` needs (`TaskSpec.coco_fields`)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    if not names or len(set(names)) != len(names):
        raise ValueError(f"names must be a non-empty list without repeats: {list(names)}")
    keep = task_spec(task).coco_fields
    if not isinstance(coco, CocoIndex):
        return load_coco(coco, keep=keep)
    if not keep <= coco.kept:
        raise ValueError(
            f"{coco.path} was loaded without keeping {', '.join(sorted(keep - coco.kept))}"
        )
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


def _box_lines(
    sources: list[SourceImage],
    classes: dict[int, int],
    summary: ConversionSummary,
    counts: list[int],
) -> list[tuple[str, int]]:
    """`cls cx cy w h` per usable box, normalised; the batch's boxes checked and formatted
    together, each rule a numpy mask over all of them.

    A box is counted by the first rule it breaks: unknown category, crowd (the rules of
    `known_annotations`), then the box rules (`pictrain.data.boxes`).
    """
    annotations = [annotation for source in sources for annotation in source.annotations]
    if not annotations:
        return [("", 0)] * len(sources)
    category_ids, bboxes, crowds, *_ = zip(*annotations, strict=True)
    image = np.repeat(np.arange(len(sources)), [len(source.annotations) for source in sources])
    frame = _frames(sources)[image]
    n = len(annotations)
    cls = np.fromiter(map(classes.get, category_ids, itertools.repeat(-1)), np.int64, n)
    unknown, usable = drop(np.ones(len(cls), bool), cls < 0)
    crowd, usable = drop(usable, np.fromiter(crowds, bool, n))
    summary.annotations_unknown_category += unknown
    summary.annotations_crowd += crowd
    boxes, missing = box_array(bboxes)
    xyxy, usable = clipped_boxes(boxes, missing, frame, usable, summary)
    kept = cls[usable]
    _count(kept, counts)
    values = _normalised(xyxy[usable], frame[usable])
    per_image = np.bincount(image[usable], minlength=len(sources)).tolist()
    texts = label_files(kept, np.full(len(kept), 4), values, per_image)
    return list(zip(texts, per_image, strict=True))


def _pose_lines(
    sources: list[SourceImage],
    classes: dict[int, int],
    summary: ConversionSummary,
    counts: list[int],
    layout: PoseLayout,
) -> list[tuple[str, int]]:
    """`cls cx cy w h x1 y1 v1 ... xK yK vK` per object with a usable box: the objects of
    `pictrain.data.keypoints`, their boxes checked as detection's, numbers formatted together."""
    images = [(s.annotations, s.probe.width, s.probe.height) for s in sources]
    poses = batch_poses(images, classes, layout, summary)
    frame = _frames(sources)[poses.image]
    keep = np.ones(len(poses.image), bool)
    xyxy, usable = clipped_boxes(poses.boxes, poses.no_box, frame, keep, summary)
    kept = poses.cls[usable]
    _count(kept, counts)
    points = poses.keypoints[usable]  # (n, K, 3)
    points[:, :, :2] /= frame[usable][:, None, :]
    boxes = _normalised(xyxy[usable], frame[usable])
    values = np.concatenate([boxes, points.reshape(len(kept), 3 * layout.size)], axis=1)
    per_image = np.bincount(poses.image[usable], minlength=len(sources)).tolist()
    texts = label_files(kept, np.full(len(kept), 4 + 3 * layout.size), values, per_image)
    return list(zip(texts, per_image, strict=True))


def _normalised(xyxy: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """cx, cy, w, h of x1 y1 x2 y2 boxes, over their images' width and height."""
    x1, y1, x2, y2 = xyxy.T
    width, height = frame[:, 0], frame[:, 1]
    return np.stack(
        [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height],
        axis=1,
    )


def _frames(sources: list[SourceImage]) -> np.ndarray:
    """(n, 2) width, height of each image."""
    return np.array([(s.probe.width, s.probe.height) for s in sources], np.float64).reshape(-1, 2)


def _count(kept: np.ndarray, counts: list[int]) -> None:
    """Add the classes of the lines written to the counts per class."""
    for i, count in enumerate(np.bincount(kept, minlength=len(counts)).tolist()):
        counts[i] += count


def _polygon_lines(
    sources: list[SourceImage],
    classes: dict[int, int],
    summary: ConversionSummary,
    counts: list[int],
) -> list[tuple[str, int]]:
    """`cls x1 y1 x2 y2 ...` per object with a usable shape (`pictrain.data.polygons.outlines`),
    normalised; the batch's numbers formatted together."""
    image, cls, annotations = _known_objects(sources, classes, summary)
    frames = _frames(sources)[image]
    files = [sources[i].image.file_name for i in image.tolist()]
    shapes = outlines([a.segmentation for a in annotations], frames, files, summary)
    kept = cls[shapes.kept]
    _count(kept, counts)
    per_image = np.bincount(image[shapes.kept], minlength=len(sources)).tolist()
    normalised = shapes.points / np.repeat(frames[shapes.kept], shapes.sizes, axis=0)
    texts = label_files(kept, 2 * shapes.sizes, normalised, per_image)
    return list(zip(texts, per_image, strict=True))


def _known_objects(
    sources: list[SourceImage], classes: dict[int, int], summary: ConversionSummary
) -> tuple[np.ndarray, np.ndarray, list[CocoAnnotation]]:
    """The image (index in `sources`), class and annotation of each usable object
    (`known_annotations`)."""
    known = [
        (i, cls, annotation)
        for i, source in enumerate(sources)
        for cls, annotation in known_annotations(source.annotations, classes, summary)
    ]
    image = np.array([i for i, _, _ in known], np.int64)
    cls = np.array([c for _, c, _ in known], np.int64)
    return image, cls, [annotation for _, _, annotation in known]


def _obb_lines(
    sources: list[SourceImage],
    classes: dict[int, int],
    summary: ConversionSummary,
    counts: list[int],
) -> list[tuple[str, int]]:
    """`cls x1 y1 x2 y2 x3 y3 x4 y4` per object with a usable oriented box, normalised (corners
    may lie a little outside 0-1: `pictrain.data.obb`); the batch's numbers formatted together."""
    image, cls, annotations = _known_objects(sources, classes, summary)
    frames = _frames(sources)[image]
    files = [sources[i].image.file_name for i in image.tolist()]
    corners, kept = object_rectangles(annotations, frames, files, summary)
    _count(cls[kept], counts)
    per_image = np.bincount(image[kept], minlength=len(sources)).tolist()
    normalised = corners / frames[kept][:, None, :]
    texts = label_files(cls[kept], np.full(int(kept.sum()), 8), normalised, per_image)
    return list(zip(texts, per_image, strict=True))
