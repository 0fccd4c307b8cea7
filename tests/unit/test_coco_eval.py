import pytest

from pictrain.evaluate.coco_eval import STAT_NAMES, evaluate_coco


def _ground_truth():
    boxes = [(1, 1, [10, 10, 40, 40]), (1, 2, [60, 60, 30, 30]), (2, 1, [5, 50, 50, 40])]
    return {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 128, "height": 128},
            {"id": 2, "file_name": "b.jpg", "width": 128, "height": 128},
        ],
        "annotations": [
            {
                "id": i,
                "image_id": img,
                "category_id": cat,
                "bbox": bbox,
                "area": bbox[2] * bbox[3],
                "iscrowd": 0,
            }
            for i, (img, cat, bbox) in enumerate(boxes, start=1)
        ],
        "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}],
    }


def test_ground_truth_as_predictions_scores_one():
    gt = _ground_truth()
    predictions = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "score": 0.9,
        }
        for a in gt["annotations"]
    ]
    report = evaluate_coco(gt, predictions)
    assert list(report.stats) == list(STAT_NAMES)
    assert report.stats["mAP50-95"] == pytest.approx(1.0)
    assert report.stats["mAP50"] == pytest.approx(1.0)
    assert report.stats["AR100"] == pytest.approx(1.0)
    assert report.per_class_ap == pytest.approx({"circle": 1.0, "square": 1.0})


def test_hand_computed_half_recall_case():
    """Class circle: 2 ground-truth boxes; predictions: an exact hit (0.9), a miss (0.8).

    Precision is 1 up to recall 0.5 and 0 beyond, on COCO's 101 recall points: 51 of them are
    <= 0.5, so AP = 51/101 at every IoU threshold. Square is never predicted: AP 0.
    """
    gt = _ground_truth()
    predictions = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [100, 100, 20, 20], "score": 0.8},
    ]
    report = evaluate_coco(gt, predictions)
    assert report.per_class_ap["circle"] == pytest.approx(51 / 101)
    assert report.per_class_ap["square"] == pytest.approx(0.0)
    assert report.stats["mAP50"] == pytest.approx(51 / 101 / 2)
    assert report.stats["mAP50-95"] == pytest.approx(51 / 101 / 2)


def test_no_predictions_scores_zero_instead_of_crashing():
    report = evaluate_coco(_ground_truth(), [])
    assert report.stats["mAP50-95"] == 0.0
    assert report.per_class_ap == {"circle": 0.0, "square": 0.0}
