"""Preemption: a run stopped by SIGTERM stores its checkpoint; the relaunch resumes from it and
its curves end up with one point per epoch, none twice, none missing. A relaunch that trains
another model, or from other starting weights, trains anew instead."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import onnxruntime
import pytest
import torch
import yaml

from pictrain import safeload
from pictrain.envvars import CHECKPOINT_MINUTES
from pictrain.train import origin
from pictrain.train.checkpoint import read_checkpoint
from pictrain.train.origin import TrainingOrigin
from tests.e2e.jobs import (
    EPOCH_CURVES,
    JOB_TIMEOUT,
    PARAMETERS,
    Finished,
    assert_failed,
    background_job,
    job_env,
    local_dataset,
    run_job,
    run_local,
    seed,
    wait_for,
)
from tests.emulator import Emulator
from tests.emulator.state import Job as PlatformJob
from tests.planted_weights import plant_checkpoint

pytestmark = pytest.mark.slow

EPOCHS = 4
STALE = 99.0  # a point the stopped attempt logged after its checkpoint


def test_picsellia_relaunch_resumes(
    emulator: Emulator,
    splits: dict,
    yolo_config_dir: Path,
    tmp_path: Path,
) -> None:
    ids = seed(emulator, splits, parameters={**PARAMETERS, "epochs": EPOCHS})
    env = {**job_env(emulator, ids, yolo_config_dir), CHECKPOINT_MINUTES.name: "0"}
    experiment = emulator.state.experiments[ids.experiment_id]
    first = tmp_path / "first"
    first.mkdir()
    with background_job(first, env) as process:
        wait_for(lambda: "last-checkpoint" in experiment.artifacts)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=JOB_TIMEOUT)
    stopped = Finished(process.returncode, output, first / "runs" / str(ids.experiment_id))
    assert_failed(emulator, ids, stopped, "stopped by SIGTERM", code=143)
    stored = tmp_path / "stored.pt"
    stored.write_bytes(emulator.state.artifact_bytes(ids.experiment_id, "last-checkpoint"))
    checkpoint = read_checkpoint(stored)
    assert checkpoint is not None and checkpoint.resumable, checkpoint
    # what the relaunch, in a fresh container, compares with what it would train
    assert checkpoint.origin == TrainingOrigin(model="yolov8n", weights_sha256=None)
    done = checkpoint.epochs_done
    kept = {name: list(experiment.logs[name].data[:done]) for name in EPOCH_CURVES}
    for name in EPOCH_CURVES:
        experiment.logs[name].data.append(STALE)

    # The platform starts a new job for the relaunch, in a fresh container: no run folder.
    job = PlatformJob()
    emulator.state.jobs[job.id] = job
    relaunch = dataclasses.replace(ids, job_id=job.id)
    second = tmp_path / "second"
    second.mkdir()
    finished = run_job(second, job_env(emulator, relaunch, yolo_config_dir), ids.experiment_id)

    assert finished.code == 0, finished.output[-3000:]
    assert f"resuming from epoch {done + 1} of {EPOCHS}" in finished.output
    assert "restored the earlier attempt's best weights" in finished.output
    for name in EPOCH_CURVES:
        data = experiment.logs[name].data
        assert len(data) == EPOCHS and STALE not in data, (name, data)
        assert data[:done] == kept[name], name
    assert "last-checkpoint" not in experiment.artifacts  # finished: nothing to resume
    assert experiment.status == "SUCCESS"
    assert emulator.state.jobs[job.id].status == "SUCCEEDED"


def test_local_rerun_resumes_and_trims_the_curves(tmp_path: Path) -> None:
    """The relaunch resumes from an older stored checkpoint than the stopped run reached: the
    points logged after it are replaced, not duplicated."""
    dataset = local_dataset(tmp_path / "dataset", {**PARAMETERS, "epochs": EPOCHS})
    run_dir = tmp_path / "runs" / "tiny"
    stored = run_dir / "artifacts" / "last-checkpoint.pt"
    command = [sys.executable, "-m", "pictrain", "run", "--local", str(dataset)]
    command += ["--name", "tiny", "--runs-dir", str(tmp_path / "runs")]
    env = {**os.environ, CHECKPOINT_MINUTES.name: "0"}
    with subprocess.Popen(command, cwd=tmp_path, env=env, text=True) as process:
        wait_for(stored.is_file)
        older = shutil.copyfile(stored, tmp_path / "epoch1.pt")
        wait_for(lambda: 2 in _steps(run_dir).get("lr/pg0", []))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=JOB_TIMEOUT) == 143
    shutil.copyfile(older, stored)
    (run_dir / "train" / "weights" / "last.pt").unlink()
    checkpoint = read_checkpoint(stored)
    assert checkpoint is not None and checkpoint.epochs_done == 1

    rerun = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=JOB_TIMEOUT
    )

    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, output[-3000:]
    assert f"resuming from epoch 2 of {EPOCHS}" in output
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
    curves = _steps(run_dir)
    for name in EPOCH_CURVES:
        assert curves[name] == list(range(1, EPOCHS + 1)), name
    assert not stored.exists()


def _steps(run_dir: Path) -> dict[str, list[int]]:
    metrics = run_dir / "metrics.jsonl"
    curves: dict[str, list[int]] = {}
    text = metrics.read_text() if metrics.is_file() else ""
    for line in text.split("\n")[:-1]:  # complete lines only: the run may be writing
        record = json.loads(line)
        if record["step"] is not None:
            curves.setdefault(record["name"], []).append(record["step"])
    return curves


def test_a_relaunch_on_other_devices_at_another_image_size_resumes_with_both(
    tmp_path: Path,
) -> None:
    """A checkpoint trained on 2 GPUs resumes on this machine's CPU, and an image size changed
    since is the one the rest of the training uses, as evaluation and export do."""
    parameters = {**PARAMETERS, "epochs": 2}
    dataset = local_dataset(tmp_path / "dataset", parameters)
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "pictrain", "run", "--local", str(dataset)]
    command += ["--runs-dir", str(runs)]
    first = runs / "first" / "artifacts" / "last-checkpoint.pt"
    env = {**os.environ, CHECKPOINT_MINUTES.name: "0"}
    with subprocess.Popen([*command, "--name", "first"], cwd=tmp_path, env=env) as process:
        wait_for(first.is_file)
        checkpoint = safeload.load(first)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=JOB_TIMEOUT)
    checkpoint["train_args"]["device"] = "0,1"  # as DDP on two GPUs writes it
    stored = runs / "second" / "artifacts" / "last-checkpoint.pt"
    stored.parent.mkdir(parents=True)
    torch.save(checkpoint, stored)
    origin.tag(stored, TrainingOrigin(model="yolov8n", weights_sha256=None))  # saved anew
    (dataset / "parameters.json").write_text(json.dumps({**parameters, "image_size": 96}))

    second = subprocess.run(
        [*command, "--name", "second"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT,
    )

    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-3000:]
    assert "resuming from epoch 2 of 2" in output
    trained = yaml.safe_load((runs / "second" / "train" / "args.yaml").read_text())
    assert (trained["device"], trained["imgsz"]) == ("cpu", 96)
    onnx = onnxruntime.InferenceSession(str(runs / "second" / "artifacts" / "model-latest.onnx"))
    assert onnx.get_inputs()[0].shape == [1, 3, 96, 96]


# --- what a relaunch resumes: only the same training --------------------------------------------

ANEW = "training from the start"


@pytest.fixture(scope="module")
def epoch1(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A local dataset (yolov8n from scratch, 2 epochs) and the checkpoint its run stored after
    epoch 1: what a relaunch of a preempted run finds."""
    root = tmp_path_factory.mktemp("epoch1")
    dataset = local_dataset(root / "dataset", {**PARAMETERS, "epochs": 2})
    stored = root / "runs" / "first" / "artifacts" / "last-checkpoint.pt"
    command = [sys.executable, "-m", "pictrain", "run", "--local", str(dataset)]
    command += ["--name", "first", "--runs-dir", str(root / "runs")]
    env = {**os.environ, CHECKPOINT_MINUTES.name: "0"}
    with subprocess.Popen(command, cwd=root, env=env) as process:
        wait_for(stored.is_file)
        checkpoint = shutil.copyfile(stored, root / "epoch1.pt")
        process.kill()
    return dataset, checkpoint


def _relaunch(
    tmp_path: Path, epoch1: tuple[Path, Path], **changes: object
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """A run of that name (the stored checkpoint in its folder) on the dataset, with the
    parameter changes and starting weights (`weights=`) given."""
    source, checkpoint = epoch1
    dataset = shutil.copytree(source, tmp_path / "dataset")
    weights = changes.pop("weights", None)
    if isinstance(weights, Path):
        shutil.copyfile(weights, dataset / "pretrained-weights.pt")
    parameters = json.loads((dataset / "parameters.json").read_text())
    (dataset / "parameters.json").write_text(json.dumps({**parameters, **changes}))
    run_dir = tmp_path / "runs" / "relaunch"
    (run_dir / "artifacts").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint, run_dir / "artifacts" / "last-checkpoint.pt")
    return run_local(dataset, tmp_path / "runs", "relaunch"), run_dir


def _trained_architecture(run_dir: Path) -> str:
    """Of the weights the run stored as its best (evaluated, exported, published)."""
    return safeload.network(run_dir / "artifacts" / "best-model.pt").yaml["yaml_file"]


def test_the_same_training_resumes_without_another_trainings_best(
    tmp_path: Path, epoch1: tuple[Path, Path]
) -> None:
    """The experiment's `best-model` of an earlier run is not brought back as the best of the
    resumed training: it would be evaluated and published as this run's."""
    from ultralytics import YOLO

    foreign = tmp_path / "runs" / "relaunch" / "artifacts" / "best-model.pt"
    foreign.parent.mkdir(parents=True)
    YOLO("yolov8s.yaml").save(str(foreign))
    done, run_dir = _relaunch(tmp_path, epoch1)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "resuming from epoch 2 of 2" in output and ANEW not in output
    assert f"not restoring the best weights {foreign}: another training's" in output
    assert "restored the earlier attempt's best weights" not in output
    assert _trained_architecture(run_dir) == "yolov8n.yaml"


def test_a_relaunch_with_another_model_trains_it_anew(
    tmp_path: Path, epoch1: tuple[Path, Path]
) -> None:
    """Resumed, it would train and publish yolov8n while config.yaml says yolov8s."""
    done, run_dir = _relaunch(tmp_path, epoch1, model="yolov8s")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    reason = "it trains model yolov8n, not yolov8s; " + ANEW
    assert re.search(r"not resuming from checkpoint \S+: " + reason, output), output[-3000:]
    assert "resuming from epoch" not in output.replace("not resuming from", "")
    assert _trained_architecture(run_dir) == "yolov8s.yaml"
    config = yaml.safe_load((run_dir / "artifacts" / "config.yaml").read_text())
    assert config["model"] == "yolov8s"


def test_a_relaunch_from_other_starting_weights_trains_anew(
    tmp_path: Path, epoch1: tuple[Path, Path]
) -> None:
    from ultralytics import YOLO

    weights = tmp_path / "yolov8n.pt"
    YOLO("yolov8n.yaml").save(str(weights))
    done, run_dir = _relaunch(tmp_path, epoch1, weights=weights)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    reason = r"it started from scratch, this run from weights sha256 [0-9a-f]{12}\.\.\.; "
    assert re.search(r"not resuming from checkpoint \S+: " + reason + ANEW, output), output
    manifest = json.loads((run_dir / "artifacts" / "manifest.json").read_text())
    started = manifest["inputs"]["starting_weights"]
    assert (started["source"], started["file"]) == ("experiment", "pretrained-weights.pt")


def test_a_planted_best_model_is_refused_before_the_resume(
    tmp_path: Path, epoch1: tuple[Path, Path]
) -> None:
    """The earlier attempt's best weights come back for the resume, and ultralytics' final
    validation unpickles them unrestricted: a planted one is refused first."""
    marker = tmp_path / "marker"
    run_dir = tmp_path / "runs" / "relaunch"
    plant_checkpoint(run_dir / "artifacts" / "best-model.pt", marker)
    done, _ = _relaunch(tmp_path, epoch1)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    refused = r"FAILED: earlier best weights \S+/artifacts/best-model\.pt refused: unpickling"
    assert re.search(refused, output), output[-3000:]
    assert "Traceback" not in output and not marker.exists()
