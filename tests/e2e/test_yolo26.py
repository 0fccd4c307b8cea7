"""YOLO26, whose head has an NMS-free (one-to-one) branch: trained, scored and exported on it,
the export decoded by `OnnxModel` exactly as ultralytics decodes the same file.

A model trained two epochs from scratch still predicts nearly what its initial biases say
(every score about 0.004), so the checks here are about which head ran and how its rows are
read, not about accuracy.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import yaml

from pictrain.cli import main
from pictrain.config import task_spec
from pictrain.evaluate.onnx_model import END2END, OUTPUTS_KEY, OnnxModel, _recognised_outputs
from pictrain.synthetic import DATASET_MAKERS
from pictrain.workflow.predict import KEY_OF_SHAPE

pytestmark = pytest.mark.slow

MODELS = {
    "detect": "yolo26n",
    "segment": "yolo26n-seg",
    "pose": "yolo26n-pose",
    "obb": "yolo26n-obb",
}
SIZE = 64
PARAMETERS = {"epochs": 2, "batch_size": 4, "image_size": SIZE, "workers": 0, "seed": 1}
# Formats besides model-latest.onnx: they carry the `outputs` key too, and their shape says it.
OTHER_EXPORTS = {"openvino": "model-openvino.zip", "torchscript": "model-torchscript.torchscript"}
SCORE_FLOOR = 0.001  # what the job scores down to: every row of these models is above it


@pytest.fixture(scope="module", params=sorted(MODELS))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    task = request.param  # the run folder's name
    root = tmp_path_factory.mktemp(f"yolo26-{task}")
    DATASET_MAKERS[task](root / "dataset", n_images=16, image_size=64, seed=0)
    parameters = {**PARAMETERS, "model": MODELS[task], "export_formats": list(OTHER_EXPORTS)}
    (root / "dataset" / "parameters.json").write_text(json.dumps(parameters))
    command = ["run", "--local", str(root / "dataset"), "--task", task, "--name", task]
    result = subprocess.run(
        [sys.executable, "-m", "pictrain", *command, "--runs-dir", str(root / "runs")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root / "runs" / task


def _test_images(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "dataset" / "images" / "test").glob("*.jpg"))


def test_trained_on_the_nms_free_head_and_exported_without_nms(run):
    """best.pt was chosen by validating the one-to-one head; the export is that head."""
    args = yaml.safe_load((run / "train" / "args.yaml").read_text())
    assert args["nms"] is False
    onnx = run / "artifacts" / "model-latest.onnx"
    session = onnxruntime.InferenceSession(str(onnx))
    assert session.get_modelmeta().custom_metadata_map[OUTPUTS_KEY] == END2END
    shapes = [output.shape for output in session.get_outputs()]
    # 64 px: 84 anchors, all of them rows (ultralytics keeps min(300, anchors)); x1 y1 x2 y2
    # (obb: cx cy w h) score class, then what the task adds: 32 mask coefficients, x y and
    # confidence per keypoint, the angle
    points = len(
        json.loads(session.get_modelmeta().custom_metadata_map.get("skeleton", "{}")).get(
            "keypoints", []
        )
    )
    extras = {"segment": 32, "pose": 3 * points, "obb": 1}.get(run.name, 0)
    assert shapes[0] == [1, 84, 6 + extras]
    assert OnnxModel.load(onnx).outputs == END2END


def test_the_gate_compares_the_same_head_on_both_sides(run):
    """The weights were scored with the head that was exported: as many predictions per image
    on both sides (the one-to-many head with NMS keeps a third of them on these images)."""
    parity = json.loads((run / "tables" / "test_deploy-parity.json").read_text())
    assert "scores as the weights" in parity["data"][0][-1]
    weights = json.loads((run / "evaluation" / "predictions.json").read_text())
    exported = json.loads((run / "evaluation" / "onnx" / "predictions.json").read_text())
    per_image = [collections.Counter(p["image_id"] for p in side) for side in (weights, exported)]
    assert per_image[0] == per_image[1] and weights
    scores = [sorted(p["score"] for p in side) for side in (weights, exported)]
    np.testing.assert_allclose(scores[0], scores[1], atol=1e-4)


def test_onnx_model_reads_the_export_as_ultralytics_does(run):
    """Same file, same images: ultralytics' own ONNX backend and `OnnxModel` agree number for
    number (boxes, classes, scores, and the masks scaled to the image)."""
    from ultralytics import YOLO
    from ultralytics.utils import ops

    onnx = run / "artifacts" / "model-latest.onnx"
    ours = OnnxModel.load(onnx)
    theirs = YOLO(str(onnx), task=run.name)
    for image in _test_images(run):
        (result,) = theirs.predict(str(image), imgsz=64, conf=SCORE_FLOOR, verbose=False)
        found = ours.predict(image, conf=SCORE_FLOOR)
        boxes = result.obb if run.name == "obb" else result.boxes
        assert len(found) == len(boxes) > 0
        assert [i.cls for i in found] == boxes.cls.int().tolist()
        np.testing.assert_allclose([i.score for i in found], boxes.conf.numpy(), rtol=1e-6)
        if run.name == "obb":
            corners = boxes.xyxyxyxy.numpy()
            np.testing.assert_allclose([i.corners for i in found], corners, atol=1e-3)
            continue
        xyxy = [(x, y, x + w, y + h) for x, y, w, h in (i.box for i in found)]
        np.testing.assert_allclose(xyxy, boxes.xyxy.numpy(), atol=1e-3)
        if result.keypoints is not None:
            keypoints = result.keypoints.data.numpy()
            np.testing.assert_allclose([i.keypoints for i in found], keypoints, atol=1e-3)
        if result.masks is not None:
            masks = ops.scale_masks(result.masks.data[None].float(), result.orig_shape)[0] > 0.5
            for instance, mask in zip(found, masks.numpy(), strict=True):
                np.testing.assert_array_equal(instance.mask, mask)


def test_predict_command_on_the_export(run, capsys, tmp_path):
    image = _test_images(run)[0]
    model = run / "artifacts" / "model-latest.onnx"
    options = ["--model", str(model), "--out", str(tmp_path), "--threshold", str(SCORE_FLOOR)]
    with pytest.raises(SystemExit) as exited:
        main(["predict", str(image), *options])
    printed = capsys.readouterr()
    assert exited.value.code in (0, None), printed.err
    answer = json.loads(printed.out.splitlines()[-1])
    key = KEY_OF_SHAPE[task_spec(run.name).evaluation_shape]
    shape = "polygon" if run.name == "obb" else "box"  # an oriented box is its 4 corners
    assert answer[key] and all(found[shape] for found in answer[key])


def test_every_export_format_has_the_nms_free_head(run):
    """OpenVINO and TorchScript files of the same weights: end2end by their metadata, as by
    their outputs' shape (how a file exported by ultralytics alone is read), and predicting what
    model-latest.onnx predicts (same rows, same scores up to each runtime's arithmetic)."""
    latest = OnnxModel.load(run / "artifacts" / "model-latest.onnx")
    for name in OTHER_EXPORTS.values():
        export = OnnxModel.load(run / "artifacts" / name)
        assert export.outputs == END2END, name
        shape = _recognised_outputs(export.runtime, run.name, len(export.names), SIZE)
        assert shape == END2END, name
        assert (export.skeleton, export.operating_point) == (
            latest.skeleton,
            latest.operating_point,
        )
        for image in _test_images(run):
            ours = export.predict(image, conf=SCORE_FLOOR)
            reference = latest.predict(image, conf=SCORE_FLOOR)
            assert len(ours) == len(reference) > 0, name
            scores = [sorted(i.score for i in side) for side in (ours, reference)]
            np.testing.assert_allclose(scores[0], scores[1], atol=1e-3, err_msg=name)
