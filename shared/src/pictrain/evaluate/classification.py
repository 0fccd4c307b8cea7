"""Classification on the test split: top-1/top-5 accuracy, per-class P/R/F1, confusion matrix."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pictrain.evaluate.predict import ultralytics_results


@dataclass(frozen=True)
class ClassificationReport:
    accuracy_top1: float
    accuracy_top5: float
    per_class: dict[str, dict[str, float]]  # name -> precision, recall, f1, support
    confusion: np.ndarray  # rows: true class, columns: predicted class


def read_class_split(split_dir: Path) -> list[tuple[Path, int]]:
    """Images and class indices; class folders sort in class order (the converter's rule)."""
    folders = sorted(p for p in split_dir.iterdir() if p.is_dir())
    return [
        (image, cls)
        for cls, folder in enumerate(folders)
        for image in sorted(folder.iterdir())
        if image.is_file()
    ]


def predict_top5(
    weights: Path, images: list[Path], image_size: int, device: str
) -> Iterator[list[tuple[int, float]]]:
    """For each image, its five best classes with their probabilities, best first."""
    for result in ultralytics_results(weights, images, image_size, device):
        probs = result.probs
        yield list(zip(probs.top5, (float(c) for c in probs.top5conf), strict=True))


def classification_report(
    truth: list[int], ranked: list[list[int]], names: list[str]
) -> ClassificationReport:
    """`ranked[i]` is image i's predicted classes, best first."""
    n = len(names)
    confusion = np.zeros((n, n), dtype=np.int64)
    for true, predicted in zip(truth, ranked, strict=True):
        confusion[true, predicted[0]] += 1
    total = max(len(truth), 1)
    top1 = float(np.trace(confusion)) / total
    top5 = sum(true in predicted[:5] for true, predicted in zip(truth, ranked, strict=True)) / total
    per_class = {}
    for cls, name in enumerate(names):
        hits = float(confusion[cls, cls])
        predicted, actual = float(confusion[:, cls].sum()), float(confusion[cls].sum())
        precision = hits / predicted if predicted else 0.0
        recall = hits / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": actual}
    return ClassificationReport(top1, float(top5), per_class, confusion)
