"""The path Picsellia runs: the image's default command (tini -> supervisor -> worker) with the
platform's variables, against the emulator on this host (`--network host`; `--gpus` aside)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

from pictrain.envvars import RETRY_BASE_DELAY
from pictrain.exportformats import MODEL_ARTIFACT
from pictrain.platform.base import (
    BEST_MODEL_ARTIFACT,
    CHECKPOINT_ARTIFACT,
    CONFIG_ARTIFACT,
    JOB_LOG_ARTIFACT,
    MANIFEST_ARTIFACT,
)
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


# Every process of the container with its parent, process group and command line, read from /proc
# (the image has no `ps`).
LIST_PROCESSES = """
import json, pathlib
out = []
for proc in pathlib.Path("/proc").glob("[0-9]*"):
    try:
        stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        argv = (proc / "cmdline").read_bytes().decode().rstrip("\\0").split("\\0")
    except OSError:
        continue
    out.append({"pid": int(proc.name), "ppid": int(stat[1]), "pgrp": int(stat[2]), "argv": argv})
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    pgrp: int
    argv: list[str]


def processes(docker: Docker, container: Container) -> dict[int, Process]:
    out = docker("exec", container.name, "python", "-c", LIST_PROCESSES).stdout
    return {p["pid"]: Process(**p) for p in json.loads(out)}


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
    stored = {BEST_MODEL_ARTIFACT, MODEL_ARTIFACT, CONFIG_ARTIFACT, MANIFEST_ARTIFACT}
    assert stored | {JOB_LOG_ARTIFACT} <= set(experiment.artifacts)
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
    """`docker stop`: tini -g signals the supervisor's process group; the worker, in a group of
    its own, gets SIGTERM once (forwarded by the supervisor), even when a second comes while it
    stores the weights and the checkpoint, and the container exits 143."""
    ids = seed(emulator, tmp_path, epochs=300)
    container = start_as_picsellia(docker, detection_image, emulator, ids)
    experiment = emulator.state.experiments[ids.experiment_id]
    container.wait_for(lambda: "train/box_loss" in experiment.logs)
    assert CHECKPOINT_ARTIFACT not in experiment.artifacts  # no periodic one yet (10 min)
    procs = processes(docker, container)
    (worker,) = [p for p in procs.values() if "--worker" in p.argv]
    supervisor = procs[worker.ppid]
    assert supervisor.ppid == 1 and procs[1].argv[0].endswith("tini"), procs
    assert worker.pgrp != supervisor.pgrp, (worker, supervisor)
    # The second SIGTERM comes once the worker has handled the first (two sent at once merge
    # into one), while a slow upload holds it in its failure path: a worker in tini's group, or
    # a supervisor that forwards each signal, logs "SIGTERM again".
    emulator.faults.add("POST", re.compile(r"^/_storage/upload$"), latency=5.0)
    docker("kill", "--signal", "TERM", container.name)
    container.wait_for(lambda: "FAILED: stopped by SIGTERM" in container.logs())
    docker("kill", "--signal", "TERM", container.name)
    code = container.wait(timeout=300)
    logs = container.logs()
    assert code == 143, logs[-3000:]
    stored = {BEST_MODEL_ARTIFACT, CHECKPOINT_ARTIFACT, JOB_LOG_ARTIFACT}
    assert stored <= set(experiment.artifacts), logs[-3000:]
    assert experiment.status == "FAILED"
    assert experiment.logs["failure reason"].data == "stopped by SIGTERM"
    assert "again" not in logs  # the worker saw one SIGTERM
    job = emulator.state.jobs[ids.job_id]
    assert job.status == "FAILED" and job.exit_code == 143
    assert job.lines[-1] == "job finished with exit code 143: stopped by SIGTERM\n"
