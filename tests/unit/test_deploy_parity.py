"""The deploy-parity gate scores the ONNX export on the test split as the weights were scored;
a hand-made ONNX stands in for a good export and for a tampered one."""

import json
import logging

import numpy as np
import pytest
from PIL import Image

from pictrain.config import ModelConfig
from pictrain.data.keypoints import PoseOptions
from pictrain.data.prepare import prepare_dataset
from pictrain.errors import DeployParityError
from pictrain.evaluate.coco_eval import KEYPOINT_STAT_NAMES
from pictrain.evaluate.onnx_model import END2END, RAW
from pictrain.evaluate.operating_point import Thresholds
from pictrain.evaluate.parity import Parity, check_export
from pictrain.evaluate.run import evaluate_test_split, export_predictor
from pictrain.job import Job
from pictrain.params import parse_parameters
from pictrain.platform.base import DatasetSplit
from pictrain.platform.local import LocalBackend
from tests.unit.onnx_stub import constant_model

SIZE = 64
AT = Thresholds.fixed(0.25, ["circle", "square"], "test")
BOX = [10.0, 20.0, 30.0, 24.0]  # x, y, w, h of the one "square" of the test image
SKELETON = {"keypoints": ["head", "left_hand", "right_hand"], "skeleton": [[1, 2], [1, 3]]}


def _prepared(tmp_path, task, annotation, skeletons=(), pose=None):
    """One test image holding one "square" (category 8), prepared for `task`; pose: the
    categories named in `skeletons` have SKELETON."""
    folder = tmp_path / "coco" / "images"
    folder.mkdir(parents=True)
    Image.new("RGB", (SIZE, SIZE)).save(folder / "x.jpg")
    coco = {
        "images": [{"id": 3, "file_name": "x.jpg", "width": SIZE, "height": SIZE}],
        "annotations": [{"id": 1, "image_id": 3, "category_id": 8, "iscrowd": 0, **annotation}],
        "categories": [
            {"id": i, "name": name, **(SKELETON if name in skeletons else {})}
            for i, name in ((4, "circle"), (8, "square"))
        ],
    }
    path = tmp_path / "coco" / "annotations.json"
    path.write_text(json.dumps(coco))
    split = DatasetSplit("train", folder, path)
    splits = {"train": split, "val": split, "test": split}
    return prepare_dataset(task, splits, tmp_path / "dataset", seed=0, pose=pose)


@pytest.fixture
def dataset(tmp_path):
    return _prepared(tmp_path, "detect", {"bbox": BOX})


def _export(path, box, kind=RAW):
    """A detection head that finds `box` (x, y, w, h) as class 1 (square): one confident anchor
    of a raw head, or the first row of an NMS-free one."""
    x, y, w, h = box
    if kind == RAW:
        head = np.zeros((1, 4 + 2, 8), np.float32)
        head[0, :4, 0] = [x + w / 2, y + h / 2, w, h]
        head[0, 5, 0] = 0.9
    else:
        head = np.zeros((1, 300, 6), np.float32)
        head[0, 0] = [x, y, x + w, y + h, 0.9, 1]
    return constant_model(path, [head], "detect", ["circle", "square"], SIZE, kind=kind)


@pytest.mark.parametrize("kind", [RAW, END2END])
def test_an_export_that_scores_as_the_weights_passes(dataset, tmp_path, kind):
    onnx = _export(tmp_path / "good.onnx", BOX, kind)
    parity = check_export("detect", onnx, dataset, {"mAP50-95(B)": 1.0}, AT, tmp_path / "out")
    assert parity.verdict == "ok" and parity.difference == 0.0
    assert parity.values == {"onnx-mAP50-95": 1.0, "onnx-mAP50-95-difference": 0.0}
    parity.enforce()
    assert (tmp_path / "out" / "predictions.json").is_file()


@pytest.mark.parametrize("kind", [RAW, END2END])
def test_a_tampered_export_fails_the_gate_with_the_reason(dataset, tmp_path, kind):
    shifted = [BOX[0] + 12, BOX[1], BOX[2], BOX[3]]
    onnx = _export(tmp_path / "tampered.onnx", shifted, kind)
    parity = check_export("detect", onnx, dataset, {"mAP50-95(B)": 1.0}, AT, tmp_path / "out")
    assert parity.verdict == "failed" and parity.onnx < 0.5
    with pytest.raises(DeployParityError, match=r"ONNX 0\.\d+, weights 1\.0000, over 0\.05"):
        parity.enforce()


def test_nothing_to_compare_without_ground_truth(dataset, tmp_path):
    onnx = _export(tmp_path / "good.onnx", BOX)
    assert check_export("detect", onnx, dataset, {}, AT, tmp_path / "out") is None


@pytest.mark.parametrize(
    ("weights", "onnx", "verdict"),
    [(0.5, 0.5, "ok"), (0.5, 0.509, "ok"), (0.5, 0.48, "warning"), (0.5, 0.56, "failed")],
)
def test_thresholds(weights, onnx, verdict):
    parity = Parity("segment", weights, onnx)
    assert parity.verdict == verdict
    assert set(parity.values) == {"onnx-mAP50-95", "onnx-mAP50-95-difference"}
    assert parity.table["data"] == [[weights, onnx, onnx - weights, parity.message]]
    if verdict == "warning":
        parity.enforce()  # a warning never fails the job; the table says it on the experiment
        assert "does not score as the weights" in parity.message and "over 0.01" in parity.message


def test_a_job_warns_on_a_small_difference_and_goes_on(dataset, tmp_path, caplog):
    """The job's gate step on a difference of 0.03: logged, said in the log and in the table
    the experiment shows, and the job is not failed."""
    run_dir = tmp_path / "run"
    job = Job(LocalBackend(tmp_path, run_dir), run_dir, ModelConfig())
    onnx = _export(tmp_path / "good.onnx", BOX)  # scores 1.0
    with caplog.at_level(logging.WARNING, logger="pictrain"):
        params = parse_parameters({}).params
        job._check_deploy_parity(onnx, dataset, params, {"mAP50-95(B)": 0.97}, AT)
    assert "does not score as the weights" in caplog.text and "over 0.01" in caplog.text
    table = json.loads((run_dir / "tables" / "test_deploy-parity.json").read_text())
    assert "over 0.01" in table["data"][0][-1]
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    logged = {p["name"]: p["value"] for p in map(json.loads, lines)}
    assert logged["test/onnx-mAP50-95-difference"] == pytest.approx(0.03)


@pytest.fixture
def obb_dataset(tmp_path):
    """The square is a bar, a polygon 36 x 8 turned by 30° about (32, 32)."""
    return _prepared(tmp_path, "obb", {"segmentation": [_bar(0).ravel().tolist()]})


def _bar(turn):
    """The bar's corners, turned `turn` radians further."""
    angle = np.pi / 6 + turn
    along, across = (
        np.array([np.cos(angle), np.sin(angle)]),
        np.array([-np.sin(angle), np.cos(angle)]),
    )
    return np.array(
        [32 + a * 18 * along + b * 4 * across for a, b in ((1, 1), (1, -1), (-1, -1), (-1, 1))]
    )


def _obb_export(path, turn):
    """An OBB head with one confident anchor: the bar, turned `turn` radians further."""
    raw = np.zeros((1, 4 + 2 + 1, 8), np.float32)
    raw[0, :4, 0] = [32, 32, 36, 8]
    raw[0, 5, 0] = 0.9
    raw[0, -1, 0] = np.pi / 6 + turn
    return constant_model(path, [raw], "obb", ["circle", "square"], SIZE, "OBB")


def test_the_gate_holds_an_oriented_box_export_to_the_weights(obb_dataset, tmp_path):
    """The exported bar where the weights found it: parity; turned 20° off: a rotated IoU of
    about 0.35, and the gate fails."""
    at = Thresholds.fixed(0.25, obb_dataset.names, "test")
    good = _obb_export(tmp_path / "good.onnx", 0)
    parity = check_export("obb", good, obb_dataset, {"mAP50-95(B)": 1.0}, at, tmp_path / "a")
    assert parity.verdict == "ok" and parity.onnx == pytest.approx(1.0)
    turned = _obb_export(tmp_path / "turned.onnx", np.radians(20))
    parity = check_export("obb", turned, obb_dataset, {"mAP50-95(B)": 1.0}, at, tmp_path / "b")
    assert parity.verdict == "failed" and parity.onnx == 0.0
    assert parity.values == {"onnx-mAP50-95": 0.0, "onnx-mAP50-95-difference": -1.0}


# --- pose: the gate reads the OKS mAP -----------------------------------------------------------

POINTS = [[25.0, 22.0], [12.0, 40.0], [38.0, 40.0]]  # inside BOX


def _pose_dataset(tmp_path, sigmas=None, skeletons=("circle", "square")):
    """The square with three labelled points, a real box and area (a COCO file's, not
    Picsellia's hull and 1.0)."""
    keypoints = [v for x, y in POINTS for v in (x, y, 2)]
    annotation = {"bbox": BOX, "area": BOX[2] * BOX[3], "keypoints": keypoints}
    options = PoseOptions(sigmas=sigmas)
    return _prepared(tmp_path / "data", "pose", annotation, skeletons, options)


def _pose_export(path, shift, circle=False):
    """A raw pose head with one confident anchor: the square's box where it is, its points
    `shift` px to the right; with `circle`, a confident circle at the top left too."""
    raw = np.zeros((1, 4 + 2 + 3 * len(POINTS), 8), np.float32)
    x, y, w, h = BOX
    raw[0, :4, 0] = [x + w / 2, y + h / 2, w, h]
    raw[0, 5, 0] = 0.9
    raw[0, 6:, 0] = [v for px, py in POINTS for v in (px + shift, py, 0.9)]
    if circle:
        raw[0, :6, 1] = [8, 8, 10, 10, 0.8, 0]
        raw[0, 6:, 1] = [5, 5, 0.9] * len(POINTS)
    extra = {"skeleton": json.dumps(SKELETON)}
    return constant_model(path, [raw], "pose", ["circle", "square"], SIZE, "Pose", extra, RAW)


def test_the_gate_holds_a_pose_export_to_the_weights_by_its_keypoints(tmp_path):
    """Points where the weights put them: parity, the 10 keypoint stats by COCO's names, and
    keypoints to send; points 20 px off in an unmoved box: the box mAP stays 1, the OKS mAP
    falls (with the dataset's sigmas, 1/3 each for 3 points) and the gate fails."""
    dataset = _pose_dataset(tmp_path)
    at = Thresholds.fixed(0.25, dataset.names, "test")
    good = _pose_export(tmp_path / "good.onnx", 0)
    parity = check_export("pose", good, dataset, {"mAP50-95(P)": 1.0}, at, tmp_path / "a")
    assert parity.verdict == "ok" and parity.onnx == pytest.approx(1.0)
    stats = json.loads((tmp_path / "a" / "coco_stats_keypoints.json").read_text())
    assert list(stats) == list(KEYPOINT_STAT_NAMES)
    shifted = _pose_export(tmp_path / "shifted.onnx", 20)
    out = tmp_path / "b"
    parity = check_export("pose", shifted, dataset, {"mAP50-95(P)": 1.0}, at, out)
    assert json.loads((out / "coco_stats.json").read_text())["mAP50-95"] == pytest.approx(1.0)
    assert parity.verdict == "failed" and parity.onnx < 0.5
    assert parity.values["onnx-mAP50-95-difference"] == pytest.approx(parity.onnx - 1.0)
    with pytest.raises(DeployParityError, match=r"mAP50-95\(P\): ONNX 0\.\d+, weights 1\.0000"):
        parity.enforce()
    wider = _pose_dataset(tmp_path / "wide", sigmas=[1.0, 1.0, 1.0])  # the run's sigmas score
    lenient = check_export("pose", shifted, wider, {"mAP50-95(P)": 1.0}, at, tmp_path / "c")
    assert lenient.onnx > parity.onnx


def test_a_label_without_a_skeleton_is_scored_but_sends_no_keypoints(tmp_path):
    """A MULTI version's rectangle-only label (circle): its objects train as boxes and its
    predictions are scored, but the platform takes keypoints only for labels with a skeleton:
    they are counted, not sent (one refused shape would fail a batch of 100)."""
    dataset = _pose_dataset(tmp_path, skeletons=("square",))
    assert dataset.keypoints.labels == ("square",)
    export = _pose_export(tmp_path / "both.onnx", 0, circle=True)
    at = Thresholds.fixed(0.25, dataset.names, "test")
    outcome = evaluate_test_split("pose", export_predictor(export), dataset, at, tmp_path / "o")
    (evaluation,) = outcome.evaluations
    assert [k.label for k in evaluation.keypoints] == ["square"]
    assert outcome.unsent == 1
    predicted = json.loads((tmp_path / "o" / "predictions_keypoints.json").read_text())
    assert sorted(p["category_id"] for p in predicted) == [4, 8]  # both scored
