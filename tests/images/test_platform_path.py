"""The path Picsellia runs: the image's default command (tini -> supervisor -> worker) with the
platform's variables, against the emulator on this host (`--network host`; `--gpus` aside)."""

from __future__ import annotations

import time

import pytest

from pictrain.envvars import RETRY_BASE_DELAY
from pictrain.synthetic import make_detection_dataset
from tests.emulator import Emulator, SeededIds
from tests.images.dockerutil import Container, Docker

pytestmark = pytest.mark.images

PARAMETERS = {"epochs": 1, "batch_size": 4, "image_size": 64, "device": "cpu", "workers": 0}


def seed(emulator: Emulator, tmp_path, **parameters: object) -> SeededIds:
    files = make_detection_dataset(
        tmp_path / "data",
        n_images=16,
        image_size=64,
        seed=0,
        splits={"train": 10, "val": 3, "test": 3},
    )
    splits = {name: (coco.parent / "images", coco) for name, coco in files.items()}
    return emulator.seed_experiment(splits, parameters={**PARAMETERS, **parameters})


def start_as_picsellia(docker: Docker, image: str, emulator: Emulator, ids: SeededIds) -> Container:
    """No command: the image's own, with the platform's variables."""
    env = {
        **emulator.job_env(ids),
        RETRY_BASE_DELAY.name: "0.05",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    return docker.start(image, flags=["--network", "host", "--shm-size", "1g"], env=env)


def wait_for(condition, container: Container, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert container.running(), container.logs()[-3000:]
        assert time.monotonic() < deadline, container.logs()[-3000:]
        time.sleep(0.5)


def test_the_default_command_trains_as_picsellia_runs_it(
    docker: Docker, detection_image: str, emulator: Emulator, tmp_path
) -> None:
    ids = seed(emulator, tmp_path)
    container = start_as_picsellia(docker, detection_image, emulator, ids)
    code = container.wait(timeout=600)
    logs = container.logs()
    assert code == 0, logs[-3000:]
    experiment = emulator.state.experiments[ids.experiment_id]
    assert experiment.status == "SUCCESS"
    assert {"best-model", "model-latest", "config", "manifest", "job-log"} <= set(
        experiment.artifacts
    )
    for curve in ("train/box_loss", "val/mAP50(B)"):
        assert len(experiment.logs[curve].data) == 1, curve
    assert len(experiment.evaluations) == 3
    job = emulator.state.jobs[ids.job_id]
    assert job.status == "SUCCEEDED" and job.exit_code == 0
    assert job.lines[-1] == "job finished with exit code 0\n"
    assert emulator.token not in logs


def test_sigterm_to_the_container_stores_weights_and_checkpoint(
    docker: Docker, detection_image: str, emulator: Emulator, tmp_path
) -> None:
    """`docker stop`: tini -g signals the whole group; the worker gets SIGTERM once (through
    the supervisor), stores the weights and the checkpoint, and the container exits 143."""
    ids = seed(emulator, tmp_path, epochs=300)
    container = start_as_picsellia(docker, detection_image, emulator, ids)
    experiment = emulator.state.experiments[ids.experiment_id]
    wait_for(lambda: "train/box_loss" in experiment.logs, container)
    assert "last-checkpoint" not in experiment.artifacts  # no periodic one yet (10 min)
    docker("kill", "--signal", "TERM", container.name)
    code = container.wait(timeout=300)
    logs = container.logs()
    assert code == 143, logs[-3000:]
    assert {"best-model", "last-checkpoint", "job-log"} <= set(experiment.artifacts), logs[-3000:]
    assert experiment.status == "FAILED"
    assert experiment.logs["failure reason"].data == "stopped by SIGTERM"
    assert "again" not in logs  # the worker saw one SIGTERM
    job = emulator.state.jobs[ids.job_id]
    assert job.status == "FAILED" and job.exit_code == 143
    assert job.lines[-1] == "job finished with exit code 143: stopped by SIGTERM\n"
