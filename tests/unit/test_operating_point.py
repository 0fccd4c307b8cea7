"""The operating point: COCO's own matching at IoU 0.5 (held to pycocotools), the F1-best and
target-precision thresholds by hand, per class with the overall one as fallback."""

from __future__ import annotations

import contextlib
import io
import random

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pictrain.evaluate.operating_point import (
    FALLBACK_THRESHOLD,
    Report,
    Scored,
    Thresholds,
    choose,
    match_instances,
    score_classes,
    threshold_of_table,
)
from pictrain.evaluate.rotated import rotated_evaluator

NAMES = ["a", "b"]


def _shape(iou_type: str, box: list[float], angle: float) -> dict:
    """A box as its kind holds it: upright, or turned by `angle` about its centre ("obb": its
    corners as `poly`, with its area and upright box, as `pictrain.evaluate.predict` writes)."""
    if iou_type == "bbox":
        return {"bbox": box}
    x, y, w, h = box
    half = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners = half @ turn.T + (x + w / 2, y + h / 2)
    (x1, y1), (x2, y2) = corners.min(axis=0), corners.max(axis=0)
    return {"poly": corners.ravel().tolist(), "area": w * h, "bbox": [x1, y1, x2 - x1, y2 - y1]}


def _dataset(seed: int, iou_type: str = "bbox") -> tuple[dict, list[dict]]:
    """Random boxes, some crowd regions, detections near and far from them."""
    rng = random.Random(seed)
    images, annotations, results = [], [], []
    for image_id in range(1, 16):
        images.append({"id": image_id, "width": 200, "height": 200})
        for _ in range(rng.randint(0, 4)):
            x, y, w, h = (
                rng.uniform(0, 150),
                rng.uniform(0, 150),
                rng.uniform(5, 50),
                rng.uniform(5, 50),
            )
            category = rng.choice([3, 7])
            crowd = int(rng.random() < 0.15)
            angle = rng.uniform(0, np.pi)
            annotations.append(
                {
                    "area": w * h,
                    **_shape(iou_type, [x, y, w, h], angle),
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "iscrowd": crowd,
                }
            )
            for _ in range(rng.randint(0, 2)):  # near it: right or a duplicate
                jitter = [v + rng.uniform(-6, 6) for v in (x, y)] + [w, h]
                results.append(
                    {
                        "image_id": image_id,
                        "category_id": category,
                        **_shape(iou_type, jitter, angle + rng.uniform(-0.2, 0.2)),
                        "score": round(rng.random(), 3),
                    }
                )
        for _ in range(rng.randint(0, 2)):  # anywhere: mostly wrong
            results.append(
                {
                    "image_id": image_id,
                    "category_id": rng.choice([3, 7]),
                    **_shape(
                        iou_type,
                        [rng.uniform(0, 150), rng.uniform(0, 150), 20, 20],
                        rng.uniform(0, np.pi),
                    ),
                    "score": round(rng.random(), 3),
                }
            )
    categories = [{"id": 3, "name": "a"}, {"id": 7, "name": "b"}]
    return {"images": images, "annotations": annotations, "categories": categories}, results


@pytest.mark.parametrize("iou_type", ["bbox", "obb"])
@pytest.mark.parametrize("seed", range(5))
def test_matching_is_cocos_at_iou_half(seed: int, iou_type: str) -> None:
    """Upright boxes (detect, pose) against pycocotools; oriented ones (obb) against the same
    COCOeval with the rotated IoU, as the test split is scored."""
    truth, results = _dataset(seed, iou_type)
    scored = match_instances(truth, results, [3, 7], iou_type)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = truth
        gt.createIndex()
        if iou_type == "obb":
            found = COCO()
            found.dataset = {
                **truth,
                "annotations": [{**r, "id": i, "iscrowd": 0} for i, r in enumerate(results, 1)],
            }
            found.createIndex()
            rotated = rotated_evaluator(COCOeval, lambda e, i, c: (e._gts[i, c], e._dts[i, c]))
            evaluator = rotated(gt, found, "bbox")
        else:
            evaluator = COCOeval(gt, gt.loadRes([dict(r) for r in results]), "bbox")
        evaluator.params.iouThrs = np.array([0.5])
        evaluator.params.areaRng = [[0, 1e10]]
        evaluator.params.areaRngLbl = ["all"]
        evaluator.evaluate()
    expected = []
    for entry in evaluator.evalImgs:
        if entry is None:
            continue
        for score, matched, ignored in zip(
            entry["dtScores"], entry["dtMatches"][0], entry["dtIgnore"][0], strict=True
        ):
            if not ignored:
                expected.append((round(score, 3), [3, 7].index(entry["category_id"]), matched > 0))
    assert sorted(
        zip(scored.scores.round(3), scored.classes, scored.correct, strict=True)
    ) == sorted(expected)
    crowd = sum(a["iscrowd"] for a in truth["annotations"])
    assert scored.truths.sum() == len(truth["annotations"]) - crowd


def _scored(rows: list[tuple[float, int, bool]], truths: list[int]) -> Scored:
    scores, classes, correct = zip(*rows, strict=True)
    return Scored(np.array(scores), np.array(classes), np.array(correct), np.array(truths))


# score, class, right: 4 truths of a, 2 of b
ROWS = [
    (0.9, 0, True),
    (0.8, 0, True),
    (0.7, 0, False),
    (0.6, 0, True),
    (0.5, 0, False),
    (0.4, 0, False),
    (0.3, 0, True),
    (0.95, 1, False),
    (0.2, 1, True),
]


def test_the_f1_best_threshold_by_hand() -> None:
    """Overall, 6 truths. At 0.8: P 2/3 R 2/6 F1 .444; at 0.6: P 3/5 R 3/6 F1 .545; at 0.3:
    P 4/8 R 4/6 F1 .571; at 0.2: P 5/9 R 5/6 F1 .667 (the best). Class a alone (4 truths):
    at 0.6 P 3/4 R 3/4 F1 .75, at 0.3 P 4/7 R 1 F1 .727: 0.6."""
    chosen = choose(_scored(ROWS, [4, 2]), NAMES, None)
    assert chosen.overall == 0.2
    assert chosen.per_class == {"a": 0.6, "b": 0.2}
    assert chosen.chosen_by == "F1-best on val"


def test_target_precision_takes_the_lowest_threshold_reaching_it() -> None:
    """Class a: precision 1 at 0.9 and 0.8, 3/4 at 0.6, 4/7 at 0.3. Overall at 0.8: 2/3."""
    chosen = choose(_scored(ROWS, [4, 2]), NAMES, 0.75)
    assert chosen.per_class["a"] == 0.6
    assert chosen.overall == 0.2  # unreachable overall (at most 2/3): the F1-best one, warned
    assert choose(_scored(ROWS, [4, 2]), NAMES, 0.6).overall == 0.6


def test_ties_are_kept_together_and_a_class_without_truths_gets_the_overall() -> None:
    rows = [(0.5, 0, True), (0.5, 0, False), (0.5, 0, False), (0.9, 1, False)]
    chosen = choose(_scored(rows, [1, 0]), NAMES, None)
    assert chosen.overall == 0.5 and chosen.per_class == {"a": 0.5, "b": 0.5}


def test_nothing_right_on_val_falls_back() -> None:
    chosen = choose(_scored([(0.9, 0, False)], [3, 0]), NAMES, None)
    assert chosen.overall == FALLBACK_THRESHOLD and chosen.per_class["a"] == FALLBACK_THRESHOLD


def test_the_report_on_test_and_its_table() -> None:
    thresholds = Thresholds(0.5, {"a": 0.6, "b": 0.2}, NAMES)
    report = Report.of(thresholds, _scored(ROWS, [4, 2]))
    assert (report.overall.precision, report.overall.recall) == pytest.approx((3 / 6, 3 / 6))
    each = report.overall_per_class  # a at 0.6 (4 kept, 3 right), b at 0.2 (2 kept, 1 right)
    assert (each.precision, each.recall) == pytest.approx((4 / 6, 4 / 6))
    assert report.classes["b"].recall == 0.5
    table = report.table()
    assert table["rows"][:2] == ["all", "all, per-class thresholds"]
    assert threshold_of_table(table) == 0.5
    assert report.record()["per_class"] == {"a": 0.6, "b": 0.2}
    restored = Thresholds.from_record(report.record(), NAMES)
    assert (restored.of(0), restored.of(1)) == (0.6, 0.2)


def test_classification_scores_the_top_class() -> None:
    scored = score_classes([0, 1, 1], [(0, 0.9), (0, 0.6), (1, 0.7)], 2)
    assert scored.correct.tolist() == [True, False, True]
    assert scored.truths.tolist() == [1, 2]
    assert scored.at(0.65).precision == 1.0 and scored.at(0.65).recall == pytest.approx(2 / 3)
