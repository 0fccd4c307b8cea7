import json

import numpy as np
import pytest

from pictrain.evaluate.coco_eval import KEYPOINT_STAT_NAMES, STAT_NAMES, evaluate_coco
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


# --- keypoints: COCO's OKS protocol, with the dataset's sigmas --------------------------------


def _people(rng, points: int, images: int = 4):
    """Objects of two categories with `points` keypoints each, some unlabelled (0, 0, 0), one
    crowd and one without a labelled point (COCO ignores both)."""
    annotations = []
    for image_id in range(1, images + 1):
        for _ in range(int(rng.integers(1, 5))):
            x, y = rng.uniform(0, 300, 2)
            w, h = rng.uniform(20, 200, 2)
            keypoints = []
            for _ in range(points):
                v = int(rng.choice([0, 1, 2], p=[0.2, 0.2, 0.6]))
                px, py = (rng.uniform(x, x + w), rng.uniform(y, y + h)) if v else (0.0, 0.0)
                keypoints += [round(float(px), 2), round(float(py), 2), v]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(rng.choice([4, 9])),
                    "bbox": [round(float(v), 2) for v in (x, y, w, h)],
                    "area": round(float(w * h * 0.53), 2),
                    "iscrowd": 0,
                    "keypoints": keypoints,
                    "num_keypoints": sum(1 for v in keypoints[2::3] if v),
                }
            )
    annotations[0]["iscrowd"] = 1
    annotations[1]["keypoints"] = [0.0] * (3 * points)
    annotations[1]["num_keypoints"] = 0
    return {
        "images": [
            {"id": i, "file_name": f"{i}.jpg", "width": 512, "height": 512}
            for i in range(1, images + 1)
        ],
        "annotations": annotations,
        "categories": [{"id": 4, "name": "person"}, {"id": 9, "name": "robot"}],
    }


def _guesses(rng, ground_truth, noise: float):
    """Each object found with jittered points (sometimes not at all), and a few strays."""
    results = []
    for a in ground_truth["annotations"]:
        if rng.random() < 0.15:
            continue
        points = np.array(a["keypoints"], float).reshape(-1, 3)
        points[:, :2] += rng.normal(0, noise, (len(points), 2))
        points[:, 2] = rng.uniform(0, 1, len(points))
        results.append(
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "keypoints": points.round(2).ravel().tolist(),
                "score": round(float(rng.uniform(0.05, 1)), 5),
            }
        )
    for image in ground_truth["images"][:2]:
        stray = rng.uniform(0, 500, (len(ground_truth["annotations"][2]["keypoints"]) // 3, 3))
        results.append(
            {
                "image_id": image["id"],
                "category_id": 4,
                "keypoints": stray.ravel().tolist(),
                "score": 0.3,
            }
        )
    return results


@pytest.mark.parametrize(("points", "sigmas"), [(17, None), (5, [0.05, 0.1, 0.2, 0.08, 0.12])])
def test_keypoint_stats_are_pycocotools_own_with_the_sigmas_given(points, sigmas):
    """The 10 keypoint stats and AP per class equal pycocotools' to 1e-12 (`scored`), with
    COCO's 17 sigmas or the dataset's own."""
    rng = np.random.default_rng(points)
    gt = _people(rng, points)
    results = _guesses(rng, gt, noise=6.0)
    report = scored(gt, results, "keypoints", sigmas)
    assert list(report.stats) == list(KEYPOINT_STAT_NAMES)
    assert 0 < report.stats["mAP50-95"] < 1
    if sigmas is not None:  # the sigmas are used: others score otherwise
        wider = scored(gt, results, "keypoints", [s * 3 for s in sigmas])
        assert wider.stats["mAP50-95"] > report.stats["mAP50-95"]


def test_keypoints_found_exactly_score_one():
    gt = _people(np.random.default_rng(1), 5)
    perfect = [
        {**{k: a[k] for k in ("image_id", "category_id", "keypoints")}, "score": 0.9}
        for a in gt["annotations"]
        if a["num_keypoints"] and not a["iscrowd"]  # the others are COCO's ignored objects
    ]
    report = scored(gt, perfect, "keypoints", [0.1] * 5)
    assert report.stats["mAP50-95"] == pytest.approx(1.0)
    assert report.stats["AR"] == pytest.approx(1.0)


def test_keypoints_of_a_split_without_some_class_score_as_pycocotools():
    """A test split where a class has no object (faster-coco-eval's keypoint evaluation then
    does not list it): stats as pycocotools', the class left out of the per-class table."""
    rng = np.random.default_rng(2)
    gt = _people(rng, 5)
    gt["categories"].append({"id": 12, "name": "ghost"})
    results = _guesses(rng, gt, noise=4.0)
    results.append({**results[0], "category_id": 12})  # found where there is none: a miss
    report = scored(gt, results, "keypoints", [0.1] * 5)
    assert list(report.per_class_ap) == ["person", "robot"]
