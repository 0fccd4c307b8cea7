"""Running `pictrain run` as the end-to-end tests do: a local dataset folder, a platform job
started as the container starts it (the real SDK against the emulator), and what a failed job
must have left behind. Shared by the test modules; the fixtures are in `conftest.py`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pictrain.envvars import PLATFORM, RETRY_BASE_DELAY, YOLO_CONFIG_DIR
from pictrain.synthetic import make_detection_dataset
from tests.emulator import Emulator
from tests.emulator.emulator import loopback_env
from tests.emulator.seeding import SeededIds

PICTRAIN = [sys.executable, "-m", "pictrain"]
PARAMETERS = {"epochs": 1, "batch_size": 4, "image_size": 64, "workers": 0, "conf_threshold": 0.001}
EPOCH_CURVES = ("train/box_loss", "val/mAP50(B)", "val/mAP50-95(B)", "lr/pg0")
JOB_TIMEOUT = 300


@dataclass(frozen=True)
class Finished:
    code: int
    output: str
    run_dir: Path


def synthetic_splits(
    folder: Path, make: Callable[..., dict[str, Path]]
) -> dict[str, tuple[Path, Path]]:
    """16 synthetic images of 64 px, 10 train, 3 val, 3 test, as `seed_experiment` takes them."""
    files = make(
        folder, n_images=16, image_size=64, seed=0, splits={"train": 10, "val": 3, "test": 3}
    )
    return {name: (coco.parent / "images", coco) for name, coco in files.items()}


def job_env(emu: Emulator, ids: SeededIds, config_dir: Path, **overrides: str | None) -> dict:
    """The container's variables as the platform sets them; nothing inherited may stand in."""
    env = {k: v for k, v in os.environ.items() if not _platform_name(k)}
    env.pop("PICSELLIA_SDK_CUSTOM_LOGGING", None)  # production does not set it
    env.update(loopback_env())
    env.update(emu.job_env(ids))
    env.update({RETRY_BASE_DELAY.name: "0.05", YOLO_CONFIG_DIR.name: str(config_dir)})
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _platform_name(name: str) -> bool:
    return any(name in var.names for var in PLATFORM.values())


def run_job(cwd: Path, env: Mapping[str, str], experiment_id: Any, *args: str) -> Finished:
    """`pictrain run ARGS` to its end, as the container runs it."""
    done = subprocess.run(
        [*PICTRAIN, "run", *args],
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=JOB_TIMEOUT,
    )
    (cwd / "output.txt").write_text(done.stdout)  # the whole story, next to the run, on failure
    return Finished(done.returncode, done.stdout, cwd / "runs" / str(experiment_id))


def seed(emu: Emulator, splits: Mapping[str, tuple[Path, Path]], **kwargs: Any) -> SeededIds:
    kwargs.setdefault("parameters", PARAMETERS)
    return emu.seed_experiment(splits, **kwargs)


def assert_failed(
    emu: Emulator,
    ids: SeededIds,
    finished: Finished,
    reason: str,
    code: int,
    on_experiment: bool = True,
) -> None:
    """Exit `code` (README's: 2 bad input, 3 platform, 143 stopped...), one clear FAILED line,
    the reason on the job (and on the experiment when the job could reach it)."""
    assert finished.code == code, finished.output[-3000:]
    assert re.search(reason, finished.output), finished.output[-3000:]
    assert "Traceback" not in finished.output, finished.output[-3000:]
    experiment = emu.state.experiments[ids.experiment_id]
    if on_experiment:
        assert experiment.status == "FAILED"
        assert re.search(reason, str(experiment.logs["failure reason"].data))
    job = emu.state.jobs[ids.job_id]
    assert job.status == "FAILED"
    assert re.search(reason, job.lines[-1]), job.lines[-1]  # why, in the log's last line
    assert job.exit_code == finished.code
    assert job.logging_object_name is not None


@contextmanager
def background_job(cwd: Path, env: Mapping[str, str]) -> Iterator[subprocess.Popen[str]]:
    """The job in the background; killed at exit if still running (a failed test)."""
    process = subprocess.Popen(
        [*PICTRAIN, "run"],
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def wait_for(condition: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the job"
        time.sleep(0.2)


def local_dataset(root: Path, parameters: dict, n_images: int = 16) -> Path:
    """A synthetic detection dataset folder with its `parameters.json`, for `run --local`."""
    make_detection_dataset(root, n_images=n_images, image_size=64, seed=0)
    (root / "parameters.json").write_text(json.dumps(parameters))
    return root


def run_local(dataset: Path, runs: Path, name: str) -> subprocess.CompletedProcess[str]:
    """`pictrain run --local DATASET --name NAME --runs-dir RUNS` to its end."""
    return subprocess.run(
        [*PICTRAIN, "run", "--local", str(dataset), "--name", name, "--runs-dir", str(runs)],
        cwd=dataset.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
