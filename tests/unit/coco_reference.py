"""Every evaluation test scores through `scored`: pictrain's engine, held to pycocotools."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pictrain.evaluate.coco_eval import CocoReport, evaluate_coco

TOLERANCE = 1e-12


def scored(
    ground_truth: dict[str, Any],
    results: list[dict[str, Any]],
    iou_type: str = "bbox",
    sigmas: Sequence[float] | None = None,
) -> CocoReport:
    """`evaluate_coco`'s report, after checking pycocotools gives the same stats (12, or 10 for
    keypoints; -1 where there is nothing to measure) and the same AP per class, to 1e-12."""
    ours = evaluate_coco(ground_truth, results, iou_type, sigmas=sigmas)
    reference = evaluate_coco(ground_truth, results, iou_type, "pycocotools", sigmas)
    assert ours.stats == pytest.approx(reference.stats, abs=TOLERANCE, rel=0)
    assert ours.per_class_ap == pytest.approx(reference.per_class_ap, abs=TOLERANCE, rel=0)
    return ours
