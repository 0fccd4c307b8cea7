"""Test-split scoring on third-party-like COCO files, against hand-computed values."""

import json
import math

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pictrain.data.coco import load_coco
from pictrain.data.prepare import prepare_dataset
from pictrain.evaluate.classification import classification_report
from pictrain.evaluate.ground_truth import EvalImage, build_ground_truth
from pictrain.evaluate.instance import Instance
from pictrain.evaluate.operating_point import Thresholds
from pictrain.evaluate.predict import coco_results, to_evaluation
from pictrain.evaluate.run import Predictor, evaluate_test_split
from pictrain.platform.base import DatasetSplit
from tests.unit.coco_reference import scored

NAMES = ["circle", "square"]


def _square(x, y, side, clockwise=True):
    points = [(x, y), (x + side, y), (x + side, y + side), (x, y + side)]
    return [c for p in (points if clockwise else points[::-1]) for c in p]


def _coco(tmp_path, annotations, images=((7, "a.jpg", 256, 256),), categories=None):
    """A COCO file with its image files; image ids and category ids as a third party has them."""
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    for _, name, width, height in images:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (width, height)).save(folder / name)
    data = {
        "images": [
            {"id": i, "file_name": name, "width": w, "height": h} for i, name, w, h in images
        ],
        "annotations": [{"id": n, "iscrowd": 0, **a} for n, a in enumerate(annotations, 1)],
        "categories": categories or [{"id": 12, "name": "circle"}, {"id": 5, "name": "square"}],
    }
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(data))
    return path, folder


def _truth(tmp_path, annotations, iou_types=("bbox", "segm"), **kwargs):
    path, folder = _coco(tmp_path, annotations, **kwargs)
    index = load_coco(path, keep=frozenset({"segmentation"} if "segm" in iou_types else ()))
    written = {image_id: image.file_name for image_id, image in index.images.items()}
    return build_ground_truth(index, written, folder, NAMES, iou_types)


def _perfect(truth, iou_type):
    """The ground truth itself as predictions, in COCO results format."""
    return [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            iou_type if iou_type == "bbox" else "segmentation": a[
                "bbox" if iou_type == "bbox" else "segmentation"
            ],
            "score": 0.9,
        }
        for a in truth.datasets[iou_type]["annotations"]
    ]


def test_a_four_part_object_drawn_in_opposite_directions_has_its_mask_area(tmp_path):
    """Four 60 px squares, two clockwise and two not: 14,400 px, a large object; the joined
    outline's signed area would cancel out to next to nothing."""
    parts = [
        _square(10, 10, 60),
        _square(100, 10, 60, clockwise=False),
        _square(10, 100, 60),
        _square(100, 100, 60, clockwise=False),
    ]
    truth = _truth(
        tmp_path,
        [{"image_id": 7, "category_id": 5, "bbox": [10, 10, 150, 150], "segmentation": parts}],
    )
    (annotation,) = truth.datasets["segm"]["annotations"]
    assert annotation["area"] == pytest.approx(4 * 60 * 60, rel=0.02)
    report = scored(truth.datasets["segm"], _perfect(truth, "segm"), "segm")
    assert report.stats["mAP50-95_large"] == pytest.approx(1.0)
    assert report.stats["mAP50-95_small"] == report.stats["mAP50-95_medium"] == -1.0


def test_segmentation_runs_score_boxes_as_the_file_gives_them(tmp_path):
    """The file's box is wider than the polygon: perfect boxes score 1.0, not the IoU of a
    box rebuilt from the polygon."""
    truth = _truth(
        tmp_path,
        [
            {
                "image_id": 7,
                "category_id": 12,
                "bbox": [20, 20, 80, 40],
                "segmentation": [_square(30, 20, 40)],
            }
        ],
    )
    (box,) = truth.datasets["bbox"]["annotations"]
    assert box["bbox"] == [20, 20, 80, 40]
    assert scored(truth.datasets["bbox"], _perfect(truth, "bbox")).stats["mAP50-95"] == 1.0


def test_area_ranges_read_the_given_area(tmp_path):
    """A 20 x 20 box (small by w x h) whose file says area 5000: COCO scores it as medium."""
    truth = _truth(
        tmp_path,
        [{"image_id": 7, "category_id": 12, "bbox": [10, 10, 20, 20], "area": 5000}],
        iou_types=("bbox",),
    )
    report = scored(truth.datasets["bbox"], _perfect(truth, "bbox"))
    assert report.stats["mAP50-95_medium"] == 1.0
    assert report.stats["mAP50-95_small"] == -1.0


def test_missing_area_is_the_mask_area_for_segmentation_else_the_box_area(tmp_path):
    annotation = {
        "image_id": 7,
        "category_id": 12,
        "bbox": [0, 0, 100, 100],
        "segmentation": [[0, 0, 100, 0, 0, 100]],
    }  # a right triangle in a box
    segm = _truth(tmp_path, [annotation]).datasets
    assert segm["segm"]["annotations"][0]["area"] == pytest.approx(5000, rel=0.02)
    assert segm["bbox"]["annotations"][0]["area"] == segm["segm"]["annotations"][0]["area"]
    detect = _truth(tmp_path, [annotation], iou_types=("bbox",)).datasets
    assert detect["bbox"]["annotations"][0]["area"] == 10000


def test_rle_masks_crowds_and_what_cannot_be_scored(tmp_path):
    mask = np.zeros((256, 256), dtype=np.uint8, order="F")
    mask[50:150, 50:100] = 1
    compressed = mask_utils.encode(mask)
    rle = {"size": compressed["size"], "counts": compressed["counts"].decode()}
    annotations = [
        {"image_id": 7, "category_id": 12, "bbox": [50, 50, 50, 100], "segmentation": rle},
        {
            "image_id": 7,
            "category_id": 5,
            "bbox": [0, 0, 256, 256],
            "iscrowd": 1,
            "segmentation": rle,
        },
        {"image_id": 7, "category_id": 99, "bbox": [0, 0, 5, 5]},  # no such category
        {
            "image_id": 7,
            "category_id": 12,
            "bbox": [0, 0, "x", 5],  # no box, no mask
            "segmentation": [[1, 2, 3, 4]],
        },
    ]
    truth = _truth(tmp_path, annotations)
    segm = truth.datasets["segm"]["annotations"]
    assert [a["iscrowd"] for a in segm] == [0, 1]
    assert segm[0]["area"] == 5000
    assert truth.left_out == {
        "category not in the labelmap": 1,
        "no usable box": 1,
        "no usable mask": 1,
    }


def test_labelmap_classes_the_file_does_not_list_get_fresh_ids(tmp_path):
    truth = _truth(tmp_path, [], categories=[{"id": 3, "name": "circle"}])
    assert truth.category_ids == [3, 4]


def test_segm_ground_truth_as_predictions_scores_one(tmp_path):
    truth = _truth(
        tmp_path,
        [
            {
                "image_id": 7,
                "category_id": 12,
                "bbox": [10, 10, 40, 40],
                "segmentation": [_square(10, 10, 40)],
            },
            {
                "image_id": 7,
                "category_id": 5,
                "bbox": [60, 60, 40, 40],
                "segmentation": [[60, 60, 100, 60, 80, 100]],
            },
        ],
    )
    image = truth.images[0]
    predictions = [
        Instance(0, (10, 10, 40, 40), [(10, 10), (50, 10), (50, 50), (10, 50)], 0.9),
        Instance(1, (60, 60, 40, 40), [(60, 60), (100, 60), (80, 100)], 0.8),
    ]
    results = coco_results(image, predictions, truth.category_ids, "segm")
    assert {r["category_id"] for r in results} == {5, 12} and {r["image_id"] for r in results} == {
        7
    }
    report = scored(truth.datasets["segm"], results, "segm")
    assert report.stats["mAP50-95"] == pytest.approx(1.0)
    assert report.per_class_ap == pytest.approx({"circle": 1.0, "square": 1.0})


def test_segm_half_overlap_counts_at_iou_050_only(tmp_path):
    """A predicted mask covering the left half of the true square: IoU 0.5, counted at IoU
    0.50 only (the threshold is inclusive), so AP50 = 1 and mAP50-95 = 1/10."""
    truth = _truth(
        tmp_path,
        [
            {
                "image_id": 7,
                "category_id": 5,
                "bbox": [10, 10, 40, 40],
                "segmentation": [_square(10, 10, 40)],
            }
        ],
    )
    mask = np.zeros((256, 256), dtype=bool)
    mask[10:50, 10:30] = True
    prediction = Instance(1, (10, 10, 20, 40), None, 0.9, mask)
    results = coco_results(truth.images[0], [prediction], truth.category_ids, "segm")
    report = scored(truth.datasets["segm"], results, "segm")
    assert report.stats["mAP50"] == pytest.approx(1.0)
    assert report.stats["mAP50-95"] == pytest.approx(0.1)


def test_predictions_json_scores_against_the_users_own_file(tmp_path):
    """Converted and renamed on the way, the test images are scored under the file's own
    image and category ids: pycocotools on the user's annotations.json gives our numbers."""
    source = tmp_path / "source"
    source.mkdir()
    boxes = [(1001, 12, [5, 5, 30, 30]), (1001, 5, [40, 40, 20, 20]), (2002, 12, [10, 20, 30, 25])]
    path, folder = _coco(
        source,
        [{"image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3]} for i, c, b in boxes],
        images=((1001, "sub/x.jpg", 64, 64), (2002, "sub/y.jpg", 64, 64)),
    )
    split = DatasetSplit("test", folder, path)
    dataset = prepare_dataset(
        "detect", {"train": split, "val": split, "test": split}, tmp_path / "dataset", seed=0
    )
    names = dataset.names

    def perfect(images: list[EvalImage]):
        by_file = {1001: boxes[:2], 2002: boxes[2:]}
        for image in images:
            yield (
                image,
                [
                    Instance(names.index({12: "circle", 5: "square"}[c]), tuple(b), None, 0.9)
                    for _, c, b in by_file[image.id]
                ],
            )

    out = tmp_path / "evaluation"
    outcome = evaluate_test_split(
        "detect",
        Predictor(perfect, None),
        dataset,
        Thresholds.fixed(0.25, dataset.names, "test"),
        out,
    )
    assert outcome.values["mAP50-95(B)"] == 1.0
    predictions = json.loads((out / "predictions.json").read_text())
    assert {p["image_id"] for p in predictions} == {1001, 2002}
    user = COCO(str(path))
    evaluator = COCOeval(user, user.loadRes(predictions), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] == outcome.values["mAP50-95(B)"]
    assert {e.file_name for e in outcome.evaluations} == {"sub/x.jpg", "sub/y.jpg"}


def test_evaluations_carry_integer_polygons_and_float_scores():
    confident = Instance(1, (10, 10, 40, 40), [(10.4, 10.6), (50.0, 10.0), (50.0, 50.0)], 0.9)
    faint = Instance(0, (0, 0, 5, 5), [(0.0, 0.0), (5.0, 0.0), (5.0, 5.0)], 0.1)
    at = Thresholds.fixed(0.25, NAMES, "test")
    evaluation = to_evaluation("a.jpg", [confident, faint], NAMES, at, "polygons")
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
    assert not math.isnan(a["f1"])


def test_classification_evaluations_keep_the_top_class_at_its_threshold(tmp_path):
    """Sent at the operating point as boxes are: an image whose top class scores under that
    class's threshold gets no class (what a deployment at that point answers)."""
    from pictrain.platform.local import LocalBackend
    from pictrain.synthetic import make_classification_dataset

    make_classification_dataset(tmp_path / "data", n_images=40, image_size=32, seed=0)
    splits = LocalBackend(tmp_path / "data", tmp_path / "run").datasets(tmp_path / "downloads")
    dataset = prepare_dataset("classify", splits, tmp_path / "dataset", seed=0)
    names = dataset.names
    tops = [(0, 0.9), (0, 0.5), (1, 0.6), (1, 0.5)]  # each image's, in turn
    thresholds = Thresholds(0.7, {names[0]: 0.7, names[1]: 0.55}, names)

    def top5(paths):
        return ([tops[k % len(tops)], (2, 0.01)] for k, _ in enumerate(paths))

    outcome = evaluate_test_split(
        "classify", Predictor(None, top5), dataset, thresholds, tmp_path / "evaluation"
    )
    sent = [[(c.label, c.score) for c in e.classifications] for e in outcome.evaluations]
    kept = [[(names[0], 0.9)], [], [(names[1], 0.6)], []]
    assert len(sent) == 4 and sent == kept
