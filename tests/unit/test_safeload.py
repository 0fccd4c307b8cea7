"""Weights files load without running code (`pictrain.safeload`): a planted pickle is refused
with one line and never runs, whichever loader meets it; a damaged file is reported as
unreadable and never unpickled; the checkpoints ultralytics writes (trained, stripped, of every
family) still load, with the record of what they train."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pictrain import safeload
from pictrain.data.convert import convert_detection, write_data_yaml
from pictrain.data.labels import labelmap_from
from pictrain.synthetic import make_detection_dataset
from pictrain.train import origin
from pictrain.train.origin import TrainingOrigin
from tests.planted_weights import PAYLOADS, RunsShell, plant_bare_pickle, plant_checkpoint

ORIGIN = TrainingOrigin(model="yolov8n", weights_sha256="c" * 64)
IMAGES = Path(__file__).parents[2] / "images"


def _yolo(path: Path) -> Any:
    from ultralytics import YOLO

    return safeload.model(YOLO, path)


def _stripped(path: Path) -> Any:
    return safeload.stripped_copy(path, path.with_name("stripped.pt"))


LOADERS: dict[str, Callable[[Path], Any]] = {
    "load": safeload.load,
    "model": _yolo,
    "network": safeload.network,
    "stripped_copy": _stripped,
}


def _train(root: Path, epochs: int, **callbacks: Callable[[Any], None]) -> Path:
    """A tiny training with the job's trainer class; its save folder."""
    from ultralytics import YOLO

    from pictrain.train.trainers import DetectionTrainer

    coco = make_detection_dataset(root / "coco", n_images=6, image_size=32, seed=0)["train"]
    names = labelmap_from([coco])
    convert_detection(coco, coco.parent / "images", root / "yolo", "train", names)
    data = write_data_yaml(root / "yolo", names, ["train"])
    model = YOLO("yolov8n.yaml")
    for event, callback in callbacks.items():
        model.add_callback(event, callback)
    with origin.handed_to_trainers(ORIGIN):
        model.train(
            trainer=DetectionTrainer,
            data=str(data),
            epochs=epochs,
            imgsz=32,
            batch=2,
            workers=0,
            device="cpu",
            plots=False,
            project=str(root),
            name="train",
            exist_ok=True,
        )
    return root / "train"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What a 2-epoch training leaves: the checkpoint of epoch 1 (optimizer, train_args: what
    a resume reads) and the final last.pt and best.pt, stripped by ultralytics."""
    root = tmp_path_factory.mktemp("trained")

    def keep_first(trainer: Any) -> None:
        if trainer.epoch == 0:
            shutil.copyfile(trainer.last, root / "epoch1.pt")

    save_dir = _train(root, epochs=2, on_model_save=keep_first)
    weights = save_dir / "weights"
    return {"epoch1": root / "epoch1.pt", "last": weights / "last.pt", "best": weights / "best.pt"}


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("loader", LOADERS)
def test_a_planted_pickle_is_refused_by_every_loader(
    tmp_path: Path, payload: type, loader: str
) -> None:
    marker = tmp_path / "marker"
    planted = plant_checkpoint(tmp_path / "pretrained-weights.pt", marker, payload)
    with pytest.raises(safeload.UnsafeWeights) as refused:
        LOADERS[loader](planted)
    message = str(refused.value)
    assert message.startswith(f"{planted} refused: unpickling it would call ")
    assert "allow-list" in message and "\n" not in message
    assert refused.value.exit_code == 2
    assert not marker.exists()


def _champion(path: Path) -> Any:
    from pictrain.evaluate.champion import compare

    return compare("detect", path, "weights", None, {}, 0.005, 32, "cpu", path.parent)  # type: ignore[arg-type]


def _export(path: Path) -> Any:
    from pictrain.artifacts import export_onnx

    return export_onnx(path, 32, path.parent / "export" / "model-latest.onnx", "detect", {"0": "a"})


def _deployment_row(path: Path) -> Any:
    import numpy as np

    from pictrain.exports.deployment import weights_row

    return weights_row("detect", path, None, "cpu", np.zeros((1, 3, 32, 32), np.float32))


def _test_inference(path: Path) -> Any:
    from pictrain.evaluate.predict import ultralytics_results

    return list(ultralytics_results(path, [], 32, "cpu"))


def _starting(path: Path) -> Any:
    from pictrain.train.models import check_starting_weights

    return check_starting_weights(path)


def _training(path: Path) -> Any:
    from pictrain.train.models import build_model

    return build_model("detect", "yolov8n", path)


def _resume(path: Path) -> Any:
    from pictrain.train.checkpoint import read_checkpoint

    return read_checkpoint(path)


# Where the job and the commands read a weights file (the e2e tests plant one where each of
# them comes from: tests/e2e/test_untrusted_weights.py).
READERS: dict[str, Callable[[Path], Any]] = {
    "starting weights, before the download": _starting,
    "the model trained": _training,
    "a resume's checkpoint": _resume,
    "the test split's inference": _test_inference,
    "the champion": _champion,
    "model-latest and every other export": _export,
    "the deployment table's weights row": _deployment_row,
}


@pytest.mark.parametrize("reader", READERS)
def test_a_planted_pickle_never_runs_wherever_weights_are_read(tmp_path: Path, reader: str) -> None:
    marker = tmp_path / "marker"
    planted = plant_checkpoint(tmp_path / "weights.pt", marker, RunsShell)
    with pytest.raises(safeload.UnsafeWeights, match=r"weights\.pt refused: unpickling it would"):
        READERS[reader](planted)
    assert not marker.exists()


def test_the_refusal_names_what_the_file_needs(tmp_path: Path) -> None:
    for payload, needs in zip(PAYLOADS, ("pathlib.Path", "posix.system"), strict=True):
        planted = plant_checkpoint(tmp_path / f"{needs}.pt", tmp_path / "marker", payload)
        with pytest.raises(safeload.UnsafeWeights, match=needs):
            safeload.load(planted, "the stored last-checkpoint")


def test_ultralytics_own_loads_are_restricted(tmp_path: Path) -> None:
    """What ultralytics loads by itself (a resume, the final validation) goes through the
    same allow-list: the switch is on in this process, as in every pictrain command."""
    from ultralytics import YOLO
    from ultralytics.nn.tasks import load_checkpoint

    safeload.require_safe_mode()
    marker = tmp_path / "marker"
    planted = plant_checkpoint(tmp_path / "last.pt", marker)
    for load in (YOLO, load_checkpoint):
        with pytest.raises(TypeError, match="outside the supported Ultralytics"):
            load(str(planted))
    assert not marker.exists()


def test_ultralytics_imported_before_the_switch_fails_closed(tmp_path: Path) -> None:
    script = (
        "import ultralytics\n"
        "from pictrain import offline, safeload\n"
        "offline.configure_environment()  # too late: ultralytics read its switches\n"
        "safeload.require_safe_mode()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ULTRALYTICS_SAFE_LOAD"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "RuntimeError: ultralytics was imported before ULTRALYTICS_SAFE_LOAD=1" in done.stderr


def test_the_switch_cannot_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from pictrain import offline

    monkeypatch.setenv("ULTRALYTICS_SAFE_LOAD", "0")
    offline.configure_environment()
    assert os.environ["ULTRALYTICS_SAFE_LOAD"] == "1"


@pytest.mark.slow
def test_damaged_files_are_unreadable_and_never_unpickled(
    tmp_path: Path, trained: dict[str, Path]
) -> None:
    marker = tmp_path / "marker"
    whole = trained["best"].read_bytes()
    damaged = {
        "truncated.pt": whole[: len(whole) // 2],
        "empty.pt": b"",
        "noise.pt": os.urandom(4096),
    }
    for name, content in damaged.items():
        (tmp_path / name).write_bytes(content)
    files = [tmp_path / name for name in damaged]
    files.append(plant_bare_pickle(tmp_path / "bare.pt", marker))
    for path in files:
        for loader in ("load", "model", "network"):
            with pytest.raises(safeload.UnreadableWeights, match=f"{path.name} cannot be read"):
                LOADERS[loader](path)
        assert safeload.stripped_copy(path, tmp_path / "copy.pt") == path  # as it was
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["epoch1", "last", "best"])
def test_the_checkpoints_a_training_writes_load(trained: dict[str, Path], kind: str) -> None:
    checkpoint = safeload.load(trained[kind])
    assert checkpoint["train_args"]["model"] == "yolov8n.yaml"
    assert (checkpoint["optimizer"] is not None) == (kind == "epoch1")
    assert _yolo(trained[kind]).task == "detect"
    assert safeload.network(trained[kind]).yaml["yaml_file"] == "yolov8n.yaml"


@pytest.mark.slow
def test_a_training_checkpoint_is_stripped(tmp_path: Path, trained: dict[str, Path]) -> None:
    stripped = safeload.stripped_copy(trained["epoch1"], tmp_path / "slim.pt")
    assert stripped == tmp_path / "slim.pt"
    assert stripped.stat().st_size < trained["epoch1"].stat().st_size / 2
    assert safeload.load(stripped)["optimizer"] is None


@pytest.mark.parametrize("name", ["yolo11n-seg", "yolov8n-cls", "rtdetr-l"])
def test_saved_models_of_every_family_load(tmp_path: Path, name: str) -> None:
    from pictrain.train.models import model_family

    family = model_family(name)
    family(f"{name}.yaml").save(str(tmp_path / "weights.pt"))
    loaded = safeload.model(family, tmp_path / "weights.pt")
    assert loaded.model.yaml["yaml_file"] == f"{name}.yaml"


@pytest.mark.slow
def test_a_trainer_records_what_it_trains_in_each_last_pt(
    tmp_path: Path, trained: dict[str, Path]
) -> None:
    """The record resumes are decided by; last.pt stripped at the end no longer needs it."""
    assert origin.read(trained["epoch1"]) == ORIGIN
    assert origin.read(trained["last"]) is None
    copy = shutil.copyfile(trained["best"], tmp_path / "best.pt")
    assert origin.read(copy) is None
    origin.tag(copy, ORIGIN)
    assert origin.read(copy) == ORIGIN
    assert _yolo(copy).task == "detect"  # torch and ultralytics read only their own records


def test_a_record_that_is_not_ours_is_no_record(tmp_path: Path) -> None:
    import zipfile

    from ultralytics import YOLO

    YOLO("yolov8n.yaml").save(str(tmp_path / "w.pt"))
    with zipfile.ZipFile(tmp_path / "w.pt", "a") as archive:
        archive.writestr(f"w/{origin.RECORD}", '{"model": "yolov8n", "unknown": 1}')
    assert origin.read(tmp_path / "w.pt") is None
    (tmp_path / "not-a-zip.pt").write_bytes(b"\x80\x02}q\x00.")
    assert origin.read(tmp_path / "not-a-zip.pt") is None


@pytest.mark.slow
def test_a_resume_ignores_a_damaged_checkpoint_and_refuses_a_planted_one(
    tmp_path: Path, trained: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    from pictrain.train.checkpoint import read_checkpoint

    checkpoint = read_checkpoint(trained["epoch1"])
    assert checkpoint is not None and checkpoint.resumable and checkpoint.origin == ORIGIN
    truncated = tmp_path / "last.pt"
    truncated.write_bytes(trained["epoch1"].read_bytes()[:4096])  # an upload cut short
    with caplog.at_level("WARNING"):
        assert read_checkpoint(truncated) is None
    assert f"not resuming: checkpoint {truncated} cannot be read" in caplog.text
    marker = tmp_path / "marker"
    planted = plant_checkpoint(tmp_path / "planted.pt", marker)
    with pytest.raises(safeload.UnsafeWeights, match=f"^checkpoint {planted} refused"):
        read_checkpoint(planted)
    assert not marker.exists()


@pytest.mark.slow
def test_the_final_validation_refuses_weights_planted_during_training(tmp_path: Path) -> None:
    """ultralytics strips best.pt with an unrestricted unpickler after the last epoch: a file
    put there meanwhile is loaded with the restricted one first, and refused."""
    marker = tmp_path / "marker"

    def plant(trainer: Any) -> None:
        plant_checkpoint(trainer.best, marker)

    with pytest.raises(safeload.UnsafeWeights, match=r"weights/best\.pt refused"):
        _train(tmp_path, epochs=1, on_fit_epoch_end=plant)
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "config", sorted(IMAGES.glob("*/model.toml")), ids=lambda p: str(p.parent.name)
)
def test_the_torchscript_export_of_every_image_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: Path
) -> None:
    """`safeload.torchscript`'s list of operators holds every one each image's export calls."""
    from pictrain.config import load_model_config
    from pictrain.train.models import head_arguments, model_family

    monkeypatch.chdir(tmp_path)  # ultralytics exports beside the weights: here
    name = load_model_config(config).model
    family = model_family(name)
    family(f"{name}.yaml").save(f"{name}.pt")
    # Loaded from a checkpoint, as the job exports best.pt: ultralytics then sets its
    # activations in place (silu_, relu_), which a model built from its yaml does not call.
    model = safeload.model(family, tmp_path / f"{name}.pt")
    made = Path(model.export(format="torchscript", imgsz=64, **head_arguments(model)))
    assert safeload.torchscript(made, "cpu") is not None
