"""Oriented boxes scored by COCO's protocol with the exact rotated IoU (evaluate/rotated.py).

There is no pycocotools for rotated boxes, so the numbers are held to three references:
- the IoU to an exact polygon clipping written here (plain Python, rational arithmetic);
- the whole evaluation, both engines, to pycocotools' COCOeval given that clipping as its IoU;
- ultralytics' own OBB validator on the same predictions: its matcher given our IoU, then COCO's
  101-point accumulation, exactly; and its complete metrics (probiou, its own AP) closely.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import cv2
import numpy as np
import pytest

from pictrain.evaluate import rotated
from pictrain.evaluate.coco_eval import evaluate_coco
from pictrain.evaluate.rotated import areas, pair_ious
from tests.unit.coco_reference import TOLERANCE, scored

WIDTH, HEIGHT = 640, 480
CLASSES = ("bar", "ship")
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


# ---- an independent IoU: Sutherland-Hodgman in exact rational arithmetic ---------------------


def _exact_area(points: list[tuple[Fraction, Fraction]]) -> Fraction:
    total = sum(
        (
            x0 * y1 - x1 * y0
            for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True)
        ),
        Fraction(0),
    )
    return abs(total) / 2


def _clipped(subject: list, clip: list) -> list:
    """`subject` ∩ `clip` (both convex; `clip` counter-clockwise), vertex by vertex."""
    output = subject
    for (ax, ay), (bx, by) in zip(clip, clip[1:] + clip[:1], strict=True):
        polygon, output = output, []
        for (px, py), (qx, qy) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
            side_p = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
            side_q = (bx - ax) * (qy - ay) - (by - ay) * (qx - ax)
            if side_p >= 0:
                output.append((px, py))
            if (side_p >= 0) != (side_q >= 0):
                t = side_p / (side_p - side_q)
                output.append((px + t * (qx - px), py + t * (qy - py)))
        if not output:
            return []
    return output


def _exact_iou(detection: np.ndarray, truth: np.ndarray, crowd: bool) -> float:
    a = [(Fraction(x), Fraction(y)) for x, y in detection.tolist()]
    b = [(Fraction(x), Fraction(y)) for x, y in truth.tolist()]
    signed = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(b, b[1:] + b[:1], strict=True))
    inter = _exact_area(_clipped(a, b if signed > 0 else b[::-1]))
    area_a, area_b = _exact_area(a), _exact_area(b)
    return float(inter / (area_a if crowd else area_a + area_b - inter))


def _reference_pair_ious(first: np.ndarray, second: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    return np.array([_exact_iou(a, b, c) for a, b, c in zip(first, second, crowd, strict=True)])


def _box(cx: float, cy: float, w: float, h: float, degrees: float) -> np.ndarray:
    return cv2.boxPoints(((cx, cy), (w, h), degrees)).astype(np.float64)


def test_iou_equals_exact_polygon_clipping() -> None:
    rng = np.random.default_rng(0)
    base = _box(100, 100, 60, 20, 30)
    pairs = [
        (base, base),  # identical
        (base, base[::-1]),  # the other orientation
        (base, _box(100, 100, 30, 10, 30)),  # inside
        (base, _box(100, 100, 60, 20, 120)),  # crossed
        (base, _box(400, 400, 60, 20, 30)),  # apart
        (_box(0, 0, 10, 10, 0), _box(10, 0, 10, 10, 0)),  # sharing an edge
        (_box(0, 0, 10, 10, 0), _box(0, 0, 10, 10, 45)),  # an octagon
    ]
    for _ in range(200):
        first = rng.uniform([80, 80, 5, 5, 0], [120, 120, 80, 40, 180])
        second = first + rng.normal(0, [8, 8, 6, 6, 15])
        second[2:4] = np.abs(second[2:4]) + 1
        pairs.append((_box(*first), _box(*second)))
    first, second = (np.array(side) for side in zip(*pairs, strict=True))
    crowd = np.arange(len(pairs)) % 5 == 0
    ours = pair_ious(first, second, crowd)
    assert ours == pytest.approx(_reference_pair_ious(first, second, crowd), abs=1e-9, rel=0)
    assert ours[0] == pytest.approx(1) and ours[1] == pytest.approx(1)
    assert ours[2] == pytest.approx(0.25) and ours[4] == 0 and ours[5] == 0
    assert ours[6] == pytest.approx((200 * np.sqrt(2) - 200) / (200 - 200 * np.sqrt(2) + 200))
    # cv2's own intersection of convex polygons, a third opinion
    inter = [
        cv2.intersectConvexConvex(a.astype(np.float32), b.astype(np.float32))[0]
        for a, b in zip(first, second, strict=True)
    ]
    union = np.where(crowd, areas(first), areas(first) + areas(second) - inter)
    assert ours == pytest.approx(np.array(inter) / union, abs=1e-4)


# ---- the protocol ------------------------------------------------------------------------------


def _annotation(corners: np.ndarray, image_id: int, category_id: int, **extra: Any) -> dict:
    x1, y1 = corners.min(0)
    x2, y2 = corners.max(0)
    return {
        "image_id": image_id,
        "category_id": category_id,
        "poly": corners.ravel().tolist(),
        "area": float(areas(corners[None])[0]),
        "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
        **extra,
    }


def _dataset(boxes: list[tuple[int, int, np.ndarray]], images: int = 2) -> dict[str, Any]:
    return {
        "images": [
            {"id": i, "file_name": f"{i}.jpg", "width": WIDTH, "height": HEIGHT}
            for i in range(1, images + 1)
        ],
        "annotations": [
            _annotation(corners, image_id, category_id, id=n, iscrowd=0)
            for n, (image_id, category_id, corners) in enumerate(boxes, start=1)
        ],
        "categories": [{"id": i, "name": name} for i, name in enumerate(CLASSES, start=1)],
    }


def _result(corners: np.ndarray, image_id: int, category_id: int, score: float) -> dict:
    return _annotation(corners, image_id, category_id, score=score)


def test_ground_truth_as_predictions_scores_one_and_a_miss_halves_recall() -> None:
    """Bar: 2 boxes, one found exactly (0.9) and one false positive (0.8): precision 1 up to
    recall 0.5, 0 beyond: 51 of COCO's 101 recall points, at every IoU threshold."""
    bar_a, bar_b = _box(100, 100, 80, 10, 30), _box(300, 200, 80, 10, 100)
    ship = _box(400, 300, 150, 40, 10)
    gt = _dataset([(1, 1, bar_a), (2, 1, bar_b), (2, 2, ship)])
    as_found = [
        _result(np.reshape(a["poly"], (4, 2)), a["image_id"], a["category_id"], 0.9)
        for a in gt["annotations"]
    ]
    perfect = scored(gt, as_found, "obb")
    assert perfect.stats["mAP50-95"] == pytest.approx(1.0)
    assert perfect.per_class_ap == pytest.approx({"bar": 1.0, "ship": 1.0})
    stray = _result(_box(500, 50, 20, 20, 0), 1, 1, 0.8)
    half = scored(gt, [_result(bar_a, 1, 1, 0.9), stray], "obb")
    assert half.per_class_ap == pytest.approx({"bar": 51 / 101, "ship": 0.0})


def test_a_box_turned_off_its_ground_truth_is_scored_by_its_rotated_overlap() -> None:
    """The same box turned by 90° about its centre: the axis-aligned boxes of the two are the
    same square, but the rotated overlap of a 100 x 20 bar with itself crossed is 400 / 3600."""
    truth = _box(200, 200, 100, 20, 45)
    gt = _dataset([(1, 1, truth)])
    report = scored(gt, [_result(_box(200, 200, 100, 20, 135), 1, 1, 0.9)], "obb")
    assert report.stats["mAP50"] == 0.0
    assert pair_ious(truth[None], _box(200, 200, 100, 20, 135)[None], np.zeros(1, bool)) == (
        pytest.approx(400 / 3600)
    )


def test_area_ranges_read_the_rotated_area() -> None:
    """A 45° bar of 60 x 15 = 900 px² is small for COCO (< 32²), though its upright enclosing
    box (53 x 53 = 2,800 px²) would be medium."""
    bar = _box(200, 200, 60, 15, 45)
    gt = _dataset([(1, 1, bar)])
    report = scored(gt, [_result(bar, 1, 1, 0.9)], "obb")
    assert report.stats["mAP50-95_small"] == pytest.approx(1.0)
    assert report.stats["mAP50-95_medium"] == -1.0


def test_detections_inside_a_crowd_region_are_ignored() -> None:
    gt = _dataset([(1, 1, _box(100, 100, 80, 10, 30))])
    crowd = _box(400, 300, 200, 100, 20)
    gt["annotations"].append(_annotation(crowd, 1, 1, id=9, iscrowd=1))
    inside = _result(_box(400, 300, 40, 20, 20), 1, 1, 0.99)
    found = _result(np.reshape(gt["annotations"][0]["poly"], (4, 2)), 1, 1, 0.5)
    report = scored(gt, [inside, found], "obb")
    assert report.per_class_ap["bar"] == pytest.approx(1.0)


def test_no_predictions_score_zero_with_cocos_minus_one_where_nothing_is_measured() -> None:
    gt = _dataset([(1, 1, _box(100, 100, 80, 10, 30))])
    report = scored(gt, [], "obb")
    assert report.stats["mAP50-95"] == 0.0 and report.stats["mAP50-95_large"] == -1.0
    assert report.per_class_ap == {"bar": 0.0}


# ---- a realistic set: held to the independent IoU and to ultralytics --------------------------


def _scene(seed: int, images: int = 40) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Rotated boxes of all sizes; detections: jittered copies of most (some of the wrong
    class), plus false positives; every score distinct."""
    rng = np.random.default_rng(seed)
    truths, detections = [], []
    for image_id in range(1, images + 1):
        for _ in range(int(rng.integers(0, 8))):
            w = np.exp(rng.uniform(np.log(8), np.log(250)))
            h = max(w / rng.uniform(1, 6), 4)
            centre = rng.uniform([w / 2, h / 2], [WIDTH - w / 2, HEIGHT - h / 2])
            box = (*centre, w, h, rng.uniform(0, 180))
            category_id = int(rng.integers(1, len(CLASSES) + 1))
            truths.append((image_id, category_id, _box(*box)))
            if rng.random() < 0.85:
                jitter = rng.normal(0, [0.03 * w, 0.03 * h, 0.03 * w, 0.03 * h, 1.5])
                moved = np.array(box) + jitter
                moved[2:4] = np.maximum(moved[2:4], 2)
                wrong = rng.random() < 0.1
                detections.append(
                    (image_id, 3 - category_id if wrong else category_id, _box(*moved))
                )
        for _ in range(int(rng.integers(0, 4))):
            w, h = rng.uniform(5, 150, 2)
            box = (*rng.uniform([0, 0], [WIDTH, HEIGHT]), w, h, rng.uniform(0, 180))
            detections.append((image_id, int(rng.integers(1, 3)), _box(*box)))
    scores = rng.permutation(len(detections)) / len(detections) * 0.99 + 0.005
    results = [
        _result(corners, image_id, category_id, float(score))
        for (image_id, category_id, corners), score in zip(detections, scores, strict=True)
    ]
    return _dataset(truths, images), results


def test_scores_equal_cocoeval_given_the_exact_polygon_iou(monkeypatch: pytest.MonkeyPatch) -> None:
    gt, results = _scene(1)
    ours = scored(gt, results, "obb")
    monkeypatch.setattr(rotated, "pair_ious", _reference_pair_ious)
    for engine in ("faster-coco-eval", "pycocotools"):
        reference = evaluate_coco(gt, results, "obb", engine=engine)
        assert reference.stats == pytest.approx(ours.stats, abs=TOLERANCE, rel=0)
        assert reference.per_class_ap == pytest.approx(ours.per_class_ap, abs=TOLERANCE, rel=0)
    assert 0.2 < ours.stats["mAP50-95"] < 0.9  # neither trivial nor hopeless


def _ultralytics_matches(
    gt: dict[str, Any], results: list[dict[str, Any]], tmp_path: Any, probiou: bool
) -> list[dict[str, Any]]:
    """ultralytics' OBB validator's matching, image by image, as it hands each image to its
    metrics: each detection's hit at each of the 10 IoU thresholds, with its score and class
    (0-based, as ultralytics numbers them), and every target's class.
    The overlap is ultralytics' probiou (`probiou`), or our IoU given to its matcher."""
    import torch
    from ultralytics.models.yolo.obb import OBBValidator
    from ultralytics.utils.ops import xyxyxyxy2xywhr

    validator = OBBValidator(save_dir=tmp_path, args={"task": "obb"})
    stats = []
    for image in gt["images"]:
        truths = [a for a in gt["annotations"] if a["image_id"] == image["id"]]
        found = sorted(
            (r for r in results if r["image_id"] == image["id"]), key=lambda r: -r["score"]
        )
        true_cls = torch.tensor([a["category_id"] - 1 for a in truths], dtype=torch.float32)
        pred_cls = torch.tensor([r["category_id"] - 1 for r in found], dtype=torch.float32)
        if truths and found:
            true_corners = np.array([a["poly"] for a in truths]).reshape(-1, 4, 2)
            pred_corners = np.array([r["poly"] for r in found]).reshape(-1, 4, 2)
            if probiou:
                tp = validator._process_batch(
                    {
                        "cls": pred_cls,
                        "bboxes": xyxyxyxy2xywhr(torch.from_numpy(pred_corners)).float(),
                    },
                    {
                        "cls": true_cls,
                        "bboxes": xyxyxyxy2xywhr(torch.from_numpy(true_corners)).float(),
                    },
                )["tp"]
            else:
                rows, columns = np.divmod(np.arange(len(truths) * len(found)), len(found))
                iou = pair_ious(
                    pred_corners[columns], true_corners[rows], np.zeros(len(rows), bool)
                )
                iou = torch.from_numpy(iou.reshape(len(truths), len(found)))
                tp = validator.match_predictions(pred_cls, true_cls, iou).numpy()
        else:
            tp = np.zeros((len(found), 10), bool)
        stats.append(
            {
                "tp": tp,
                "conf": np.array([r["score"] for r in found]),
                "pred_cls": pred_cls.numpy(),
                "target_cls": true_cls.numpy(),
                "target_img": np.unique(true_cls.numpy()),
                "im_name": image["file_name"],
            }
        )
    return stats


def _coco_ap(tp: np.ndarray, conf: np.ndarray, truths: int) -> float:
    """COCO's accumulation for one class: precision made monotone, read at 101 recall points,
    averaged over them and the IoU thresholds."""
    order = np.argsort(-conf, kind="mergesort")
    hits = tp[order].cumsum(0)
    misses = (~tp[order]).cumsum(0)
    recall = hits / truths
    precision = np.maximum.accumulate((hits / np.maximum(hits + misses, 1))[::-1], axis=0)[::-1]
    values = []
    for t in range(tp.shape[1]):
        at = np.searchsorted(recall[:, t], np.linspace(0, 1, 101), side="left")
        values.append(
            np.where(at < len(precision), precision[np.minimum(at, len(precision) - 1), t], 0)
        )
    return float(np.mean(values))


def test_ultralytics_matching_on_our_iou_gives_our_ap_exactly(tmp_path: Any) -> None:
    gt, results = _scene(2)
    ours = evaluate_coco(gt, results, "obb")
    per_image = _ultralytics_matches(gt, results, tmp_path, probiou=False)
    stats = {
        key: np.concatenate([s[key] for s in per_image])
        for key in ("tp", "conf", "pred_cls", "target_cls")
    }
    for cls, name in enumerate(CLASSES):
        mine = stats["pred_cls"] == cls
        truths = int(np.count_nonzero(stats["target_cls"] == cls))
        ap = _coco_ap(stats["tp"][mine], stats["conf"][mine], truths)
        assert ap == pytest.approx(ours.per_class_ap[name], abs=TOLERANCE, rel=0)


def _ultralytics_metrics(
    gt: dict[str, Any], results: list[dict[str, Any]], tmp_path: Any, probiou: bool
) -> Any:
    """ultralytics' OBB metrics, fed image by image as its validator feeds them."""
    from ultralytics.utils.metrics import OBBMetrics

    metrics = OBBMetrics(names=dict(enumerate(CLASSES)))
    for stats in _ultralytics_matches(gt, results, tmp_path, probiou):
        metrics.update_stats(stats)
    metrics.process()
    return metrics.box


@pytest.mark.parametrize("seed", [3, 4])
def test_ultralytics_obb_metrics_on_the_same_predictions(tmp_path: Any, seed: int) -> None:
    """Its complete metrics. Given our IoU, they differ from ours only by how the precision
    curve is integrated (its interpolation vs COCO's 101 points): within 0.005. With its own
    probiou (a Gaussian overlap, not an IoU), mAP50 stays within 0.02, but probiou is lenient
    at the strict thresholds: its mAP50-95 is higher (by 0.06-0.08 on these sets)."""
    gt, results = _scene(seed, images=80)
    ours = evaluate_coco(gt, results, "obb")
    same_iou = _ultralytics_metrics(gt, results, tmp_path, probiou=False)
    assert same_iou.map50 == pytest.approx(ours.stats["mAP50"], abs=0.005)
    assert same_iou.map == pytest.approx(ours.stats["mAP50-95"], abs=0.005)
    own = _ultralytics_metrics(gt, results, tmp_path, probiou=True)
    assert own.map50 == pytest.approx(ours.stats["mAP50"], abs=0.02)
    assert ours.stats["mAP50-95"] < own.map < ours.stats["mAP50-95"] + 0.1


def test_ground_truth_is_what_the_converter_wrote(tmp_path: Any) -> None:
    """The test split's oriented boxes are the training labels' boxes, crowd regions included
    (as crowd regions), with their own area; objects without one are left out and counted."""
    from test_convert import NAMES, annotation, image_entry, make_coco, make_image

    from pictrain.data.coco import load_coco
    from pictrain.data.convert import convert_obb
    from pictrain.evaluate.ground_truth import build_ground_truth

    make_image(tmp_path / "src" / "a.jpg")
    triangle = [[10, 5, 30, 5, 20, 25]]
    coco = make_coco(
        tmp_path / "coco.json",
        [image_entry(1, "a.jpg")],
        [
            annotation(1, None, segmentation=triangle),
            annotation(1, [60, 10, 30, 50], category_id=7),  # clipped to the image
            annotation(1, None, segmentation=[[0, 0, 10, 10]]),  # unusable
            annotation(1, None, segmentation=[[50, 5, 70, 5, 60, 25]], iscrowd=1),
        ],
    )
    index = load_coco(coco, keep=frozenset({"segmentation"}))
    summary = convert_obb(index, tmp_path / "src", tmp_path / "out", "train", NAMES)
    truth = build_ground_truth(
        index, summary.written, tmp_path / "out" / "images" / "train", NAMES, ("obb",)
    )
    entries = truth.datasets["obb"]["annotations"]
    labels = (tmp_path / "out" / "labels" / "train" / "a.txt").read_text().splitlines()
    written = [np.array(line.split()[1:], float).reshape(4, 2) * (100, 50) for line in labels]
    assert [e["iscrowd"] for e in entries] == [0, 0, 1]
    for entry, corners in zip(entries[:2], written, strict=True):
        assert np.reshape(entry["poly"], (4, 2)) == pytest.approx(corners, abs=1e-4)
    assert entries[1]["area"] == pytest.approx(30 * 40)
    assert entries[1]["bbox"] == pytest.approx([60, 10, 30, 40])
    assert [e["category_id"] for e in entries] == [3, 7, 3]
    assert truth.left_out == {"no usable oriented box": 1}


def test_a_run_scores_oriented_boxes_and_sends_them_as_polygons(tmp_path: Any) -> None:
    """The test split of an OBB run, through the same path as the weights and the export: the
    boxes the converter wrote, found exactly, score 1 (B metrics, as ultralytics names them);
    predictions.json holds corners, area and upright box; the platform gets 4-point polygons
    inside the image, confident ones only."""
    import json

    from test_convert import annotation, image_entry, make_coco, make_image

    from pictrain.data.prepare import prepare_dataset
    from pictrain.evaluate.instance import oriented
    from pictrain.evaluate.operating_point import Thresholds
    from pictrain.evaluate.run import Predictor, evaluate_test_split
    from pictrain.platform.base import DatasetSplit

    make_image(tmp_path / "src" / "a.jpg")
    bar = _box(20, 25, 60, 10, 30)  # reaches out of the 100 x 50 image on the left
    triangle = [10, 5, 30, 5, 20, 25]
    coco = make_coco(
        tmp_path / "coco.json",
        [image_entry(1, "a.jpg")],
        [
            annotation(1, None, segmentation=[bar.ravel().tolist()]),
            annotation(1, [60, 10, 30, 20], category_id=7, segmentation=[]),
            annotation(1, None, segmentation=[triangle]),
        ],
    )
    split = DatasetSplit("test", tmp_path / "src", coco)
    dataset = prepare_dataset(
        "obb", {"train": split, "val": split, "test": split}, tmp_path / "dataset", seed=0
    )
    labels = (dataset.labels_dir("test") / "a.txt").read_text().splitlines()
    found = [
        oriented(int(row[0]), np.array(row[1:], float).reshape(4, 2) * (100, 50), score, (50, 100))
        for row, score in zip((line.split() for line in labels), (0.9, 0.8, 0.1), strict=True)
    ]
    out = tmp_path / "evaluation"
    at = Thresholds.fixed(0.25, dataset.names, "test")
    predictor = Predictor(lambda images: ((i, found) for i in images), None)
    outcome = evaluate_test_split("obb", predictor, dataset, at, out)
    assert outcome.values["mAP50-95(B)"] == pytest.approx(1.0, abs=1e-3)
    assert set(outcome.tables) == {"test/per-class-AP(B)"}
    (prediction, *_) = json.loads((out / "predictions.json").read_text())
    assert set(prediction) == {"image_id", "category_id", "score", "poly", "area", "bbox"}
    (evaluation,) = outcome.evaluations
    assert [len(p.points) for p in evaluation.polygons] == [4, 4]  # the third is not confident
    shown = np.array([p.points for p in evaluation.polygons])
    assert shown.min() >= 0 and (shown.max(axis=(0, 1)) <= (100, 50)).all()
    assert np.reshape(prediction["poly"], (4, 2))[:, 0].min() < 0  # scored as it is
