import json

import pytest

from pictrain.evaluate.coco_eval import STAT_NAMES, evaluate_coco
from tests.unit.coco_reference import scored


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
        # "triangle" has no ground truth in this split
        "categories": [
            {"id": 1, "name": "circle"},
            {"id": 2, "name": "square"},
            {"id": 3, "name": "triangle"},
        ],
    }


def _as_predictions(ground_truth, score=0.9):
    return [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "score": score,
        }
        for a in ground_truth["annotations"]
    ]


def test_ground_truth_as_predictions_scores_one():
    gt = _ground_truth()
    report = scored(gt, _as_predictions(gt))
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
    report = scored(gt, predictions)
    assert report.per_class_ap["circle"] == pytest.approx(51 / 101)
    assert report.per_class_ap["square"] == pytest.approx(0.0)
    assert report.stats["mAP50"] == pytest.approx(51 / 101 / 2)
    assert report.stats["mAP50-95"] == pytest.approx(51 / 101 / 2)


def test_no_predictions_keep_cocos_minus_one_and_the_classes_of_the_split():
    """No large object in the split: COCO's -1 for that range, with or without predictions;
    the per-class table lists the classes with ground truth, as a run with predictions does."""
    gt = _ground_truth()
    empty = scored(gt, [])
    assert empty.stats["mAP50-95"] == 0.0 and empty.stats["AR100_medium"] == 0.0
    assert empty.stats["mAP50-95_large"] == -1.0 and empty.stats["AR100_large"] == -1.0
    assert empty.per_class_ap == {"circle": 0.0, "square": 0.0}
    found = scored(gt, _as_predictions(gt))
    assert found.stats["mAP50-95_large"] == -1.0
    assert set(found.per_class_ap) == set(empty.per_class_ap)


def test_predictions_of_a_class_without_ground_truth_are_false_positives_elsewhere_only():
    """A detection of triangle (no ground truth) changes no class's AP and adds no class."""
    gt = _ground_truth()
    stray = {"image_id": 1, "category_id": 3, "bbox": [10, 10, 40, 40], "score": 0.95}
    report = scored(gt, [*_as_predictions(gt), stray])
    assert report.per_class_ap == pytest.approx({"circle": 1.0, "square": 1.0})


def test_crowd_regions_are_ignored_not_missed():
    """A detection inside a crowd region is neither a hit nor a false positive; the crowd
    region itself is never a miss."""
    gt = _ground_truth()
    gt["annotations"].append(
        {
            "id": 9,
            "image_id": 2,
            "category_id": 2,
            "bbox": [70, 70, 50, 50],
            "area": 2500,
            "iscrowd": 1,
        }
    )
    inside = {"image_id": 2, "category_id": 2, "bbox": [75, 75, 20, 20], "score": 0.99}
    report = scored(gt, [*_as_predictions(gt), inside])
    assert report.per_class_ap["square"] == pytest.approx(1.0)


def test_segm_with_masks_and_an_empty_result_list_agree_with_pycocotools():
    gt = _ground_truth()
    for annotation in gt["annotations"]:
        x, y, w, h = annotation["bbox"]
        annotation["segmentation"] = [[x, y, x + w, y, x + w / 2, y + h]]
    report = scored(gt, [], "segm")
    assert report.stats["mAP50-95"] == 0.0


def test_inputs_are_left_as_they_were():
    gt, predictions = _ground_truth(), _as_predictions(_ground_truth())
    before = json.dumps([gt, predictions])
    evaluate_coco(gt, predictions)
    evaluate_coco(gt, predictions, engine="pycocotools")
    assert json.dumps([gt, predictions]) == before


def test_per_class_ap_follows_the_order_of_the_categories_not_their_ids():
    gt = _ground_truth()
    gt["categories"] = gt["categories"][::-1]  # labelmap order, whatever the file's ids
    report = scored(gt, _as_predictions(gt))
    assert list(report.per_class_ap) == ["square", "circle"]
