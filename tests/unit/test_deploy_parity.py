"""The deploy-parity gate scores the ONNX export on the test split as the weights were scored;
a hand-made ONNX stands in for a good export and for a tampered one."""

import json
import logging

import numpy as np
import pytest
from PIL import Image

from pictrain.config import ModelConfig
from pictrain.data.prepare import prepare_dataset
from pictrain.errors import DeployParityError
from pictrain.evaluate.onnx_model import END2END, RAW
from pictrain.evaluate.parity import Parity, check_export
from pictrain.job import Job
from pictrain.params import parse_parameters
from pictrain.platform.base import DatasetSplit
from pictrain.platform.local import LocalBackend
from tests.unit.onnx_stub import constant_model

SIZE = 64
BOX = [10.0, 20.0, 30.0, 24.0]  # x, y, w, h of the one "square" of the test image


def _prepared(tmp_path, task, annotation):
    """One test image holding one "square" (category 8), prepared for `task`."""
    folder = tmp_path / "coco" / "images"
    folder.mkdir(parents=True)
    Image.new("RGB", (SIZE, SIZE)).save(folder / "x.jpg")
    coco = {
        "images": [{"id": 3, "file_name": "x.jpg", "width": SIZE, "height": SIZE}],
        "annotations": [{"id": 1, "image_id": 3, "category_id": 8, "iscrowd": 0, **annotation}],
        "categories": [{"id": 4, "name": "circle"}, {"id": 8, "name": "square"}],
    }
    path = tmp_path / "coco" / "annotations.json"
    path.write_text(json.dumps(coco))
    split = DatasetSplit("train", folder, path)
    splits = {"train": split, "val": split, "test": split}
    return prepare_dataset(task, splits, tmp_path / "dataset", seed=0)


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
    parity = check_export("detect", onnx, dataset, {"mAP50-95(B)": 1.0}, 0.25, tmp_path / "out")
    assert parity.verdict == "ok" and parity.difference == 0.0
    assert parity.values == {"onnx-mAP50-95": 1.0, "onnx-mAP50-95-difference": 0.0}
    parity.enforce()
    assert (tmp_path / "out" / "predictions.json").is_file()


@pytest.mark.parametrize("kind", [RAW, END2END])
def test_a_tampered_export_fails_the_gate_with_the_reason(dataset, tmp_path, kind):
    shifted = [BOX[0] + 12, BOX[1], BOX[2], BOX[3]]
    onnx = _export(tmp_path / "tampered.onnx", shifted, kind)
    parity = check_export("detect", onnx, dataset, {"mAP50-95(B)": 1.0}, 0.25, tmp_path / "out")
    assert parity.verdict == "failed" and parity.onnx < 0.5
    with pytest.raises(DeployParityError, match=r"ONNX 0\.\d+, weights 1\.0000, over 0\.05"):
        parity.enforce()


def test_nothing_to_compare_without_ground_truth(dataset, tmp_path):
    onnx = _export(tmp_path / "good.onnx", BOX)
    assert check_export("detect", onnx, dataset, {}, 0.25, tmp_path / "out") is None


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
        job._check_deploy_parity(onnx, dataset, parse_parameters({}).params, {"mAP50-95(B)": 0.97})
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
    good = _obb_export(tmp_path / "good.onnx", 0)
    parity = check_export("obb", good, obb_dataset, {"mAP50-95(B)": 1.0}, 0.25, tmp_path / "a")
    assert parity.verdict == "ok" and parity.onnx == pytest.approx(1.0)
    turned = _obb_export(tmp_path / "turned.onnx", np.radians(20))
    parity = check_export("obb", turned, obb_dataset, {"mAP50-95(B)": 1.0}, 0.25, tmp_path / "b")
    assert parity.verdict == "failed" and parity.onnx == 0.0
    assert parity.values == {"onnx-mAP50-95": 0.0, "onnx-mAP50-95-difference": -1.0}
