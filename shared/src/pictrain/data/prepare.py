"""From fetched splits to a training-ready ultralytics dataset: resolve, label, convert."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pictrain.artifacts import sha256
from pictrain.data.coco import CocoIndex, load_coco
from pictrain.data.convert import (
    ConversionSummary,
    convert_classification,
    convert_detection,
    convert_segmentation,
    write_data_yaml,
)
from pictrain.data.labels import labelmap_from
from pictrain.data.splits import resolve_splits
from pictrain.params import DEFAULT_HOLDOUT_FRACTION
from pictrain.platform.base import DatasetSplit

log = logging.getLogger(__name__)

CONVERTERS = {
    "detect": convert_detection,
    "segment": convert_segmentation,
    "classify": convert_classification,
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
    indexes: dict[str, CocoIndex]  # each split's COCO file, parsed once

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
        return {
            name: {
                "annotations_sha256": sha256(split.coco_file),
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
) -> PreparedDataset:
    resolved = resolve_splits(splits, root / "cut", seed, holdout_fraction)
    for note in resolved.notes:
        log.warning("%s", note)
    indexes = {
        name: load_coco(split.coco_file, keep_segmentation=task == "segment")
        for name, split in resolved.splits.items()
    }
    names = labelmap_from(indexes.values())
    summaries = {}
    for name, split in resolved.splits.items():
        summaries[name] = CONVERTERS[task](indexes[name], split.images_dir, root, name, names)
        log.info("%s", summaries[name])
    train_data = root if task == "classify" else write_data_yaml(root, names, resolved.splits)
    return PreparedDataset(root, names, train_data, resolved.splits, summaries, indexes)
