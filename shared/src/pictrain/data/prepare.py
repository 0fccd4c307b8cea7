"""From fetched splits to a training-ready ultralytics dataset: resolve, label, convert."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pictrain.checksums import sha256
from pictrain.config import task_spec
from pictrain.data.coco import CocoIndex
from pictrain.data.convert import (
    ConversionSummary,
    convert_classification,
    convert_detection,
    convert_obb,
    convert_pose,
    convert_segmentation,
    write_data_yaml,
)
from pictrain.data.keypoints import PoseLayout, PoseOptions, resolve_layout
from pictrain.data.labels import labelmap_from
from pictrain.data.splits import DatasetSplit, resolve_splits
from pictrain.errors import UserError
from pictrain.params import DEFAULT_HOLDOUT_FRACTION

log = logging.getLogger(__name__)
TRAINING_SPLITS = ("train", "val")  # what training itself reads: without labels it learns nothing

# (COCO index, images folder, dataset root, split, labelmap) -> what was written.
Converter = Callable[[CocoIndex, Path, Path, str, list[str]], ConversionSummary]
CONVERTERS: dict[str, Callable[..., ConversionSummary]] = {
    "detect": convert_detection,
    "segment": convert_segmentation,
    "classify": convert_classification,
    "pose": convert_pose,
    "obb": convert_obb,
}


@dataclass(frozen=True)
class PreparedDataset:
    """`train_data` is what ultralytics takes as `data`: a data.yaml, or for classification
    the root of the class folders."""

    root: Path
    names: list[str]
    train_data: Path
    splits: dict[str, DatasetSplit]
    summaries: dict[str, ConversionSummary]
    indexes: dict[str, CocoIndex]  # every split's COCO file as parsed, once (evaluation reads it)
    keypoints: PoseLayout | None = None  # pose: the dataset's point layout

    @property
    def labelmap(self) -> dict[str, str]:
        """Index -> name in training order: the order the ONNX model's outputs follow."""
        return {str(i): name for i, name in enumerate(self.names)}

    def images_dir(self, split: str) -> Path:
        return self.root / "images" / split

    def labels_dir(self, split: str) -> Path:
        return self.root / "labels" / split

    def source_name(self, converted: str) -> str:
        """A test image's name as the platform knows it."""
        return self.summaries["test"].source_name(converted)

    def checksums(self) -> dict[str, Any]:
        """Per split: the user's own COCO file (a cut split's is the one it was cut from), so
        two runs on the same input compare equal whatever was cut."""
        digests = {path: sha256(path) for path in {s.source_file for s in self.splits.values()}}
        return {
            name: {
                "annotations_sha256": digests[split.source_file],
                "cut_from": split.cut_from.name if split.cut_from else None,
                "images": self.summaries[name].images_written,
                "dataset_version_id": split.version_id,
            }
            for name, split in self.splits.items()
        }


def prepare_dataset(
    task: str,
    splits: dict[str, DatasetSplit],
    root: Path,
    seed: int,
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    pose: PoseOptions | None = None,
) -> PreparedDataset:
    """Resolve the splits, make the labelmap (and for pose the point layout, with `pose`'s
    options), convert every split."""
    spec = task_spec(task)
    resolved = resolve_splits(splits, root / "cut", seed, holdout_fraction, keep=spec.coco_fields)
    for note in resolved.notes:
        log.warning("%s", note)
    indexes = resolved.indexes
    names = labelmap_from(indexes.values())
    keypoints = dataset_layout(task, indexes.values(), names, pose)
    convert = converter(task, keypoints)
    summaries = {}
    for name, split in resolved.splits.items():
        summaries[name] = convert(indexes[name], split.images_dir, root, name, names)
        log.info("%s", summaries[name])
    _check_labels(summaries, names)
    train_data = (
        root if spec.per_image else write_data_yaml(root, names, resolved.splits, keypoints)
    )
    return PreparedDataset(root, names, train_data, resolved.splits, summaries, indexes, keypoints)


def dataset_layout(
    task: str, indexes: Iterable[CocoIndex], names: list[str], options: PoseOptions | None = None
) -> PoseLayout | None:
    """Pose: the point layout of the dataset's labels (`resolve_layout`); other tasks: None."""
    if "keypoints" not in task_spec(task).coco_fields:
        return None
    return resolve_layout(indexes, names, options or PoseOptions())


def converter(task: str, keypoints: PoseLayout | None) -> Converter:
    """The task's converter, with the dataset's point layout bound (pose)."""
    if keypoints is None:
        return CONVERTERS[task]
    return functools.partial(CONVERTERS[task], layout=keypoints)


def _check_labels(summaries: dict[str, ConversionSummary], names: list[str]) -> None:
    """Fail when a split training reads has no label; warn about classes no split shows."""
    for split in TRAINING_SPLITS:
        summary = summaries[split]
        if not summary.labels_written:
            raise UserError(
                f"the {split} split has no usable {summary.unit}: {summary.why_unlabelled()}"
            )
    unseen = [n for n in names if not any(s.class_counts.get(n) for s in summaries.values())]
    if unseen:
        log.warning(
            "%d of %d categories have no usable annotation in any split (the model gets "
            "classes it never sees): %s",
            len(unseen),
            len(names),
            ", ".join(unseen),
        )
