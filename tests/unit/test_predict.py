"""`pictrain predict --model`: the deployable file alone, for every task; hand-made ONNX models
stand in for trained ones (tests/unit/onnx_stub.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pictrain.cli import main
from tests.unit.onnx_stub import constant_model

SIZE = 64
NAMES = ["cat", "dog", "fox"]


def predict(capsys: pytest.CaptureFixture[str], model: Path, image: Path, out: Path) -> dict:
    with pytest.raises(SystemExit) as exited:
        main(
            ["predict", str(image), "--model", str(model), "--threshold", "0.25", "--out", str(out)]
        )
    printed = capsys.readouterr()
    assert exited.value.code in (0, None), printed.out + printed.err
    return json.loads(printed.out.splitlines()[-1])


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (SIZE, SIZE), "grey").save(path)
    return path


def test_classes(capsys, tmp_path: Path, image: Path) -> None:
    probabilities = np.array([[0.1, 0.7, 0.2]])
    model = constant_model(
        tmp_path / "m.onnx", [probabilities], "classify", NAMES, SIZE, "Classify"
    )
    answer = predict(capsys, model, image, tmp_path / "out")
    assert answer["classes"] == [{"label": "dog", "score": 0.7}]
    assert Path(answer["drawn"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_polygons(capsys, tmp_path: Path, image: Path) -> None:
    """One confident anchor whose mask coefficients light the whole prototype: its polygon
    is the box's outline."""
    raw = np.zeros((1, 4 + len(NAMES) + 32, 8), np.float32)
    raw[0, :4, 0] = [32, 32, 24, 24]  # centre x, y, width, height
    raw[0, 4 + 2, 0] = 0.9  # fox
    raw[0, 4 + len(NAMES), 0] = 1.0
    protos = np.zeros((1, 32, SIZE // 4, SIZE // 4), np.float32)
    protos[0, 0] = 10.0
    model = constant_model(tmp_path / "m.onnx", [raw, protos], "segment", NAMES, SIZE, "Segment")
    answer = predict(capsys, model, image, tmp_path / "out")
    (found,) = answer["polygons"]
    assert (found["label"], found["score"]) == ("fox", 0.9)
    assert found["box"] == [20.0, 20.0, 24.0, 24.0]
    xs, ys = zip(*found["polygon"], strict=True)
    assert len(found["polygon"]) >= 3
    assert (min(xs), min(ys)) >= (19, 19) and (max(xs), max(ys)) <= (45, 45)
    assert Path(answer["drawn"]).is_file()


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """What `pictrain predict` printed when it refused the input: exit 2, no traceback."""
    with pytest.raises(SystemExit) as exited:
        main(["predict", *args])
    printed = capsys.readouterr()
    assert exited.value.code == 2, printed.out + printed.err
    assert "Traceback" not in printed.out + printed.err
    return printed.err


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("best-model.pt", b"PK\x03\x04 torch weights", "is none of .engine, .onnx, .torchscript"),
        ("model.onnx", b"truncated", ""),
        ("model.torchscript", b"not a zip", ""),
        ("model-openvino.zip", b"not a zip", "File is not a zip file"),
    ],
)
def test_a_file_that_is_not_an_export_is_refused(
    capsys, tmp_path: Path, image: Path, name: str, content: bytes, reason: str
) -> None:
    model = tmp_path / name
    model.write_bytes(content)
    error = refused(capsys, str(image), "--model", str(model), "--out", str(tmp_path / "out"))
    assert f"--model {model} is not a model pictrain can run: " in error and reason in error
    assert len(error.strip().splitlines()) == 1


def test_a_file_whose_outputs_cannot_be_told_is_refused(capsys, tmp_path: Path, image: Path):
    """No `outputs` key and a shape that fits neither kind (nor both): one line, not a guess."""
    model = constant_model(tmp_path / "m.onnx", [np.zeros((1, 9, 9))], "detect", NAMES, SIZE)
    error = refused(capsys, str(image), "--model", str(model), "--out", str(tmp_path / "out"))
    assert f"--model {model} has no 'outputs' in its metadata" in error
    assert len(error.strip().splitlines()) == 1


def test_a_zip_reaching_outside_its_folder_is_refused(capsys, tmp_path: Path, image: Path):
    import zipfile

    model = tmp_path / "model-openvino.zip"
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr("../../escaped.xml", "<net/>")
    error = refused(capsys, str(image), "--model", str(model), "--out", str(tmp_path / "out"))
    assert "holds a path outside its folder: ../../escaped.xml" in error
    assert not (tmp_path.parent / "escaped.xml").exists()


def test_a_file_that_is_not_an_image_is_refused(capsys, tmp_path: Path) -> None:
    model = constant_model(
        tmp_path / "m.onnx", [np.array([[0.1, 0.7, 0.2]])], "classify", NAMES, SIZE, "Classify"
    )
    notes = tmp_path / "notes.jpg"
    notes.write_text("not an image")
    error = refused(capsys, str(notes), "--model", str(model), "--out", str(tmp_path / "out"))
    assert error.strip() == f"error: {notes} is not an image OpenCV can read"


@pytest.mark.parametrize("threshold", ["2", "-0.1", "high"])
def test_a_threshold_outside_0_to_1_is_refused(capsys, tmp_path: Path, image: Path, threshold):
    error = refused(
        capsys, str(image), "--model", str(tmp_path / "m.onnx"), "--threshold", threshold
    )
    assert f"'{threshold}' is not a score from 0 to 1" in error
