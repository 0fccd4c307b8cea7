"""Preemption: a run stopped by SIGTERM stores its checkpoint; the relaunch resumes from it and
its curves end up with one point per epoch, none twice, none missing."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import onnxruntime
import pytest
import torch
import yaml

from pictrain.envvars import CHECKPOINT_MINUTES
from pictrain.train.checkpoint import read_checkpoint
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
    seed,
    wait_for,
)
from tests.emulator import Emulator
from tests.emulator.state import Job as PlatformJob

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
    from ultralytics.utils.patches import torch_load

    parameters = {**PARAMETERS, "epochs": 2}
    dataset = local_dataset(tmp_path / "dataset", parameters)
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "pictrain", "run", "--local", str(dataset)]
    command += ["--runs-dir", str(runs)]
    first = runs / "first" / "artifacts" / "last-checkpoint.pt"
    env = {**os.environ, CHECKPOINT_MINUTES.name: "0"}
    with subprocess.Popen([*command, "--name", "first"], cwd=tmp_path, env=env) as process:
        wait_for(first.is_file)
        checkpoint = torch_load(first, map_location="cpu")
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=JOB_TIMEOUT)
    checkpoint["train_args"]["device"] = "0,1"  # as DDP on two GPUs writes it
    stored = runs / "second" / "artifacts" / "last-checkpoint.pt"
    stored.parent.mkdir(parents=True)
    torch.save(checkpoint, stored)
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
