"""pictrain's metadata in every export format, where each keeps it: a file read by `OnnxModel`
says its kind of outputs, its point layout and its operating point as model-latest.onnx does
(hand-made files stand in for ultralytics' exports)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pictrain.evaluate.onnx_model import OnnxModel
from pictrain.evaluate.runtimes import OPENVINO_METADATA, TORCHSCRIPT_METADATA, engine_header
from pictrain.exports import metadata
from tests.unit.onnx_stub import constant_model

SIZE = 32
NAMES = ["cat", "dog"]
SKELETON = {"keypoints": ["nose", "tail"], "skeleton": [[1, 2]]}
POINT = {"threshold": 0.4, "per_class": {"dog": 0.6}, "chosen_by": "F1-best on val"}
# An end2end pose head: rows x1, y1, x2, y2, score, class, then x, y, confidence per point.
ROWS = np.zeros((1, 300, 6 + 2 * 3), np.float32)
# What ultralytics writes itself, as data (OpenVINO's YAML, TorchScript's and TensorRT's JSON).
THEIRS = {"task": "pose", "names": dict(enumerate(NAMES)), "imgsz": [SIZE, SIZE], "head": "Pose"}


def _keys() -> dict:
    labelmap = {str(i): name for i, name in enumerate(NAMES)}
    return metadata.ours("pose", SIZE, labelmap, SKELETON, "Pose26", True, POINT)


def _read_as_model_latest(path: Path) -> None:
    model = OnnxModel.load(path)
    assert (model.task, model.names, model.image_size) == ("pose", NAMES, SIZE)
    assert (model.outputs, model.skeleton, model.operating_point) == ("end2end", SKELETON, POINT)


def test_onnx(tmp_path: Path) -> None:
    path = constant_model(tmp_path / "m.onnx", [ROWS], "pose", NAMES, SIZE, "Pose26")
    metadata.add(path, "onnx", _keys())
    _read_as_model_latest(path)


def test_openvino(tmp_path: Path) -> None:
    import openvino
    import yaml

    source = constant_model(tmp_path / "m.onnx", [ROWS], "pose", NAMES, SIZE, "Pose26")
    folder = tmp_path / "m_openvino_model"
    folder.mkdir()
    openvino.save_model(openvino.convert_model(str(source)), str(folder / "m.xml"))
    (folder / OPENVINO_METADATA).write_text(yaml.safe_dump(THEIRS))
    metadata.add(folder, "openvino", _keys())
    _read_as_model_latest(folder)
    assert yaml.safe_load((folder / OPENVINO_METADATA).read_text())["head"] == "Pose"  # kept


def test_torchscript(tmp_path: Path) -> None:
    import torch

    class Constant(torch.nn.Module):
        def forward(self, images: torch.Tensor) -> torch.Tensor:
            # only operators an ultralytics export calls: safeload.torchscript refuses others
            return images.new_zeros(ROWS.shape) + images.sum() * 0

    path = tmp_path / "m.torchscript"
    traced = torch.jit.trace(Constant(), torch.zeros(1, 3, SIZE, SIZE))
    torch.jit.save(traced, str(path), _extra_files={TORCHSCRIPT_METADATA: json.dumps(THEIRS)})
    metadata.add(path, "torchscript", _keys())
    _read_as_model_latest(path)
    (rows,) = OnnxModel.load(path).runtime.run(np.zeros((1, 3, SIZE, SIZE), np.float32))
    assert rows.shape == ROWS.shape  # still runs


@pytest.mark.parametrize("header", [True, False])
def test_tensorrt_engine_header(tmp_path: Path, header: bool) -> None:
    """No TensorRT here: the header before the engine's bytes, read back as the runtime does."""
    engine = b"\x00\x01serialized engine"
    path = tmp_path / "m.engine"
    text = json.dumps(THEIRS).encode()
    path.write_bytes((len(text).to_bytes(4, "little") + text if header else b"") + engine)
    metadata.add(path, "engine", _keys())
    read, offset = engine_header(path.read_bytes())
    assert path.read_bytes()[offset:] == engine
    assert read == {**(json.loads(text) if header else {}), **_keys()}
