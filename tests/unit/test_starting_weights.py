"""The starting weights, in order: the experiment's, the base model version's, the image's own for
the model asked, else from scratch with a warning that says why."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from pictrain.envvars import WEIGHTS_DIR
from pictrain.errors import UserError
from pictrain.params import parse_parameters
from pictrain.platform.local import LocalBackend
from pictrain.starting import LOGGED, StartingWeights, choose


def _file(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture
def image_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The image's weights folder, holding yolov8n and yolov8s only."""
    folder = tmp_path / "image-weights"
    for model in ("yolov8n", "yolov8s"):
        _file(folder / f"{model}.pt", model.encode())
    monkeypatch.setenv(WEIGHTS_DIR.name, str(folder))
    return folder


def _nothing_attached() -> None:
    return None


def test_the_experiment_weights_come_before_the_image_weights(image_dir: Path, tmp_path: Path):
    attached = StartingWeights.found("experiment", _file(tmp_path / "mine.pt", b"mine"))
    chosen = choose(True, "yolov8n", lambda: attached)
    assert chosen is attached
    assert chosen.record() == {
        "source": "experiment",
        "file": "mine.pt",
        "sha256": hashlib.sha256(b"mine").hexdigest(),
    }


def test_without_attached_weights_the_image_weights_for_the_model_asked(
    image_dir: Path, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.INFO, logger="pictrain"):
        chosen = choose(True, "yolov8s", _nothing_attached)
    sha = hashlib.sha256(b"yolov8s").hexdigest()
    assert chosen.record() == {"source": "image", "file": "yolov8s.pt", "sha256": sha}
    assert chosen.path == image_dir / "yolov8s.pt"
    # one line says what the manifest records
    assert [r.getMessage() for r in caplog.records if "starting weights" in r.getMessage()] == [
        f"starting weights: image yolov8s.pt, sha256 {sha}"
    ]
    logged = LOGGED.search(caplog.text)
    assert logged is not None and logged.groups() == ("image", "yolov8s.pt", sha)


def test_pretrained_false_trains_from_scratch_without_fetching_anything(
    image_dir: Path, caplog: pytest.LogCaptureFixture
):
    def attached() -> None:
        raise AssertionError("pretrained: false must not fetch the experiment's weights")

    pretrained = parse_parameters({"pretrained": "false"}).params.pretrained
    with caplog.at_level(logging.WARNING, logger="pictrain"):
        chosen = choose(pretrained, "yolov8n", attached)
    assert chosen.record() == {"source": "none", "file": None, "sha256": None}
    expected = "starting weights: none, training yolov8n from scratch: the parameter pretrained"
    assert f"{expected} is false" in caplog.text


def test_an_architecture_the_image_has_no_weights_for_trains_from_scratch_saying_why(
    image_dir: Path, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.WARNING, logger="pictrain"):
        chosen = choose(True, "yolo11m", _nothing_attached)
    assert chosen.source == "none" and chosen.path is None
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "training yolo11m from scratch" in warning.getMessage()
    assert "no pretrained weights for yolo11m (it has yolov8n, yolov8s," in warning.getMessage()


def test_outside_the_images_no_weights_folder_means_from_scratch(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.delenv(WEIGHTS_DIR.name, raising=False)
    with caplog.at_level(logging.WARNING, logger="pictrain"):
        chosen = choose(True, "yolov8n", _nothing_attached)
    assert chosen.source == "none"
    assert f"{WEIGHTS_DIR.name} is not set" in caplog.text


def test_the_local_folder_pretrained_weights_are_the_experiment_weights(tmp_path: Path):
    dataset = tmp_path / "dataset"
    _file(dataset / "pretrained-weights.pt", b"start here")
    backend = LocalBackend(dataset, tmp_path / "run")
    attached = backend.base_weights(tmp_path / "run" / "weights")
    assert attached is not None
    assert attached.record() == {
        "source": "experiment",
        "file": "pretrained-weights.pt",
        "sha256": hashlib.sha256(b"start here").hexdigest(),
    }
    without = tmp_path / "without"
    without.mkdir()
    assert LocalBackend(without, tmp_path / "run2").base_weights(tmp_path / "w") is None


def test_a_path_given_as_pretrained_says_where_weights_go():
    with pytest.raises(UserError, match="pretrained: expected true or false; a weights file goes"):
        parse_parameters({"pretrained": "yolov8s.pt"})


def test_image_weights_of_another_task_keep_the_clear_error(tmp_path: Path):
    """An image folder whose yolov8n.pt holds a segmentation model: the job fails naming it,
    instead of training a detector from mismatched weights."""
    from ultralytics import YOLO

    from pictrain.train.models import build_model

    weights = tmp_path / "yolov8n.pt"
    YOLO("yolov8n-seg.yaml").save(str(weights))
    with pytest.raises(UserError, match=r"starting weights yolov8n\.pt are a segment model, not"):
        build_model("detect", "yolov8n", weights)
