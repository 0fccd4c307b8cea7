"""Segmentation and classification scoring against hand-computed values."""

from pathlib import Path

import numpy as np
import pytest

from pictrain.evaluate.classification import classification_report
from pictrain.evaluate.coco_eval import evaluate_coco
from pictrain.evaluate.ground_truth import (
    EvalImage,
    Instance,
    coco_ground_truth,
    polygon_area,
    read_yolo_split,
)
from pictrain.evaluate.predict import coco_results, to_evaluation

NAMES = ["circle", "square"]


def _images() -> list[EvalImage]:
    square = [(10.0, 10.0), (50.0, 10.0), (50.0, 50.0), (10.0, 50.0)]
    triangle = [(60.0, 60.0), (100.0, 60.0), (80.0, 100.0)]
    return [
        EvalImage(1, Path("a.jpg"), 128, 128, [Instance(1, (10, 10, 40, 40), square)]),
        EvalImage(2, Path("b.jpg"), 128, 128, [Instance(0, (60, 60, 40, 40), triangle)]),
    ]


def test_polygon_area_is_the_shoelace_value():
    assert polygon_area([(0, 0), (4, 0), (4, 3)]) == 6
    assert polygon_area([(10, 10), (50, 10), (50, 50), (10, 50)]) == 1600


def test_segm_ground_truth_as_predictions_scores_one():
    images = _images()
    ground_truth = coco_ground_truth(images, NAMES)
    predictions = [r for image in images for r in coco_results(image, image.instances, "segm")]
    assert all(isinstance(p["segmentation"]["counts"], str) for p in predictions)
    report = evaluate_coco(ground_truth, predictions, "segm")
    assert report.stats["mAP50-95"] == pytest.approx(1.0)
    assert report.per_class_ap == pytest.approx({"circle": 1.0, "square": 1.0})


def test_segm_half_overlap_misses_at_iou_050_and_above():
    """A predicted square covering the left half of the true one: IoU 0.5 - counted at IoU
    0.50 only (the threshold is inclusive), so AP50 = 1 and mAP50-95 = 1/10."""
    images = _images()[:1]
    half = [(10.0, 10.0), (30.0, 10.0), (30.0, 50.0), (10.0, 50.0)]
    prediction = EvalImage(1, Path("a.jpg"), 128, 128, [Instance(1, (10, 10, 20, 40), half, 0.9)])
    report = evaluate_coco(
        coco_ground_truth(images, NAMES),
        coco_results(prediction, prediction.instances, "segm"),
        "segm",
    )
    assert report.stats["mAP50"] == pytest.approx(1.0)
    assert report.stats["mAP50-95"] == pytest.approx(0.1)


def test_segmentation_labels_are_read_back_as_polygons(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.new("RGB", (100, 50)).save(tmp_path / "images" / "x.jpg")
    (tmp_path / "labels" / "x.txt").write_text("1 0.1 0.2 0.5 0.2 0.5 0.6\n0 0.5 0.5 0.2 0.4\n")
    (image,) = read_yolo_split(tmp_path / "images", tmp_path / "labels")
    polygon, box = image.instances
    assert [c for point in polygon.polygon for c in point] == pytest.approx(
        [10, 10, 50, 10, 50, 30]
    )
    assert polygon.box == pytest.approx((10, 10, 40, 20))
    assert box.polygon is None and box.box == pytest.approx((40, 15, 20, 20))


def test_evaluations_carry_integer_polygons_and_float_scores():
    (image,) = _images()[:1]
    confident = Instance(1, image.instances[0].box, [(10.4, 10.6), (50.0, 10.0), (50.0, 50.0)], 0.9)
    faint = Instance(0, (0, 0, 5, 5), [(0.0, 0.0), (5.0, 0.0), (5.0, 5.0)], 0.1)
    evaluation = to_evaluation("a.jpg", [confident, faint], NAMES, 0.25, polygons=True)
    (polygon,) = evaluation.polygons
    assert polygon.points == [[10, 11], [50, 10], [50, 50]]
    assert polygon.label == "square" and isinstance(polygon.score, float)
    assert evaluation.detections == []


def test_classification_report_hand_computed():
    """Truth 0 0 1 1 2, top-1 predictions 0 1 1 1 0: 3/5 right. Only the last image's class
    is absent from its ranking: top-5 = 4/5."""
    truth = [0, 0, 1, 1, 2]
    ranked = [[0, 1], [1, 0], [1, 2], [1, 0], [0, 1]]
    report = classification_report(truth, ranked, ["a", "b", "c"])
    assert report.accuracy_top1 == pytest.approx(3 / 5)
    assert report.accuracy_top5 == pytest.approx(4 / 5)
    np.testing.assert_array_equal(report.confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    a, b, c = (report.per_class[n] for n in "abc")
    assert (a["precision"], a["recall"]) == pytest.approx((1 / 2, 1 / 2))
    assert (b["precision"], b["recall"], b["f1"]) == pytest.approx((2 / 3, 1.0, 0.8))
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == (0.0, 0.0, 0.0, 1.0)
