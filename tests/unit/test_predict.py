"""`pictrain predict --model`: the deployable file alone, for every task; hand-made ONNX models
stand in for trained ones (tests/unit/onnx_stub.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pictrain.cli import main
from tests.planted_weights import PAYLOADS, plant_checkpoint, plant_torchscript
from tests.unit.onnx_stub import constant_model

SIZE = 64
NAMES = ["cat", "dog", "fox"]


def predict(
    capsys: pytest.CaptureFixture[str],
    model: Path,
    image: Path,
    out: Path,
    threshold: list[str] = ["--threshold", "0.25"],  # noqa: B006 (never changed)
) -> dict:
    with pytest.raises(SystemExit) as exited:
        main(["predict", str(image), "--model", str(model), *threshold, "--out", str(out)])
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


def test_without_a_threshold_each_class_is_kept_at_its_operating_point(
    capsys, tmp_path: Path, image: Path
) -> None:
    """Two boxes scoring 0.5, a cat's and a dog's: the file's operating point keeps cats from
    0.4 and dogs from 0.6 (its overall 0.45 would keep both); `--threshold` overrides it."""
    raw = np.zeros((1, 4 + len(NAMES), 8), np.float32)
    raw[0, :4, 0], raw[0, 4 + 0, 0] = [16, 16, 10, 10], 0.5  # cat
    raw[0, :4, 1], raw[0, 4 + 1, 1] = [48, 48, 10, 10], 0.5  # dog
    point = {"threshold": 0.45, "per_class": {"cat": 0.4, "dog": 0.6, "fox": 0.45}}
    extra = {"operating_point": json.dumps({**point, "chosen_by": "F1-best on val"})}
    model = constant_model(tmp_path / "m.onnx", [raw], "detect", NAMES, SIZE, extra=extra)
    kept = predict(capsys, model, image, tmp_path / "out", threshold=[])
    assert [found["label"] for found in kept["boxes"]] == ["cat"]
    given = predict(capsys, model, image, tmp_path / "out", ["--threshold", "0.45"])
    assert sorted(found["label"] for found in given["boxes"]) == ["cat", "dog"]


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


def test_oriented_boxes(capsys, tmp_path: Path, image: Path) -> None:
    """One confident anchor: a 40 x 10 bar turned by 30°, centred on the 64 px image. It comes
    out as its 4 corners, no upright box, and is drawn as a turned rectangle."""
    raw = np.zeros((1, 4 + len(NAMES) + 1, 8), np.float32)
    raw[0, :4, 0] = [32, 32, 40, 10]  # centre x, y, width, height
    raw[0, 4 + 1, 0] = 0.8  # dog
    raw[0, -1, 0] = np.pi / 6  # the angle, last
    model = constant_model(tmp_path / "m.onnx", [raw], "obb", NAMES, SIZE, "OBB")
    answer = predict(capsys, model, image, tmp_path / "out")
    (found,) = answer["polygons"]
    assert (found["label"], found["score"], "box" in found) == ("dog", 0.8, False)
    corners = np.array(found["polygon"])
    along = np.array([np.cos(np.pi / 6), np.sin(np.pi / 6)])
    across = np.array([-along[1], along[0]])
    expected = [
        32 + a * 20 * along + b * 5 * across for a, b in ((1, 1), (1, -1), (-1, -1), (-1, 1))
    ]
    np.testing.assert_allclose(corners, expected, atol=0.06)
    drawn = np.asarray(Image.open(answer["drawn"]).convert("L"), np.int16)
    grey = np.asarray(Image.open(image).convert("L"), np.int16)
    changed = np.argwhere(np.abs(drawn - grey) > 30)  # the outline and its label
    corner = np.round(expected[1]).astype(int)
    assert (np.abs(changed - corner[::-1]).max(axis=1) <= 2).any()


def test_poses_are_drawn_as_their_skeleton(capsys, tmp_path: Path, image: Path) -> None:
    """One confident anchor with three keypoints, the third under even odds: the JSON has all
    three; the drawing has the two visible points and the edge between them, not the others."""
    raw = np.zeros((1, 4 + len(NAMES) + 9, 8), np.float32)
    raw[0, :4, 0] = [32, 32, 40, 40]
    raw[0, 4 + 1, 0] = 0.8  # dog
    raw[0, 4 + len(NAMES) :, 0] = [20, 20, 0.9, 44, 20, 0.9, 32, 50, 0.2]
    skeleton = {"keypoints": ["a", "b", "c"], "skeleton": [[1, 2], [2, 3]]}
    model = constant_model(
        tmp_path / "m.onnx", [raw], "pose", NAMES, SIZE, "Pose", {"skeleton": json.dumps(skeleton)}
    )
    answer = predict(capsys, model, image, tmp_path / "out")
    (found,) = answer["poses"]
    assert (found["label"], found["score"], found["box"]) == ("dog", 0.8, [12.0, 12.0, 40.0, 40.0])
    assert found["keypoints"] == [[20.0, 20.0, 0.9], [44.0, 20.0, 0.9], [32.0, 50.0, 0.2]]
    drawn = np.asarray(Image.open(answer["drawn"]).convert("RGB")).astype(int)
    grey = np.asarray(Image.open(image).convert("RGB")).astype(int)
    changed = np.abs(drawn - grey).sum(axis=2) > 30
    assert changed[20, 32]  # the edge between the two visible points
    assert changed[20, 20] and changed[20, 44]
    assert not changed[50, 32] and not changed[35, 38]  # the unsure point, its edge


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


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("suffix", [".pt", ".torchscript"])
def test_a_planted_pickle_never_runs(
    capsys, tmp_path: Path, image: Path, payload: type, suffix: str
) -> None:
    marker = tmp_path / "marker"
    planted = plant_checkpoint(tmp_path / f"model{suffix}", marker, payload)
    error = refused(capsys, str(image), "--model", str(planted), "--out", str(tmp_path / "out"))
    assert f"--model {planted} is not a model pictrain can run: " in error
    assert not marker.exists()


def test_a_torchscript_program_that_would_write_a_file_is_refused(
    capsys, tmp_path: Path, image: Path
) -> None:
    """A TorchScript file runs its own code; one calling more than ultralytics' exports do
    (here a file write) is refused before it is loaded."""
    marker = tmp_path / "marker"
    planted = plant_torchscript(tmp_path / "model-torchscript.torchscript", marker)
    error = refused(capsys, str(image), "--model", str(planted), "--out", str(tmp_path / "out"))
    assert error.splitlines() == [
        f"error: {planted} refused: its TorchScript program calls torch.fill_, torch.from_file, "
        "torch.ones, which no ultralytics export calls"
    ]
    assert not marker.exists()
