"""How long `pictrain run` takes from SIGTERM to exit with a realistic checkpoint upload.

`python -m scripts.measure_stop [--model yolov8m] [--mb-per-s 25] [--stop-timeout 120 30]
[--image pictrain/yolov8-detection:0.1.0-cu128]`

Against the emulator, uploads slowed to a bandwidth and every API call to a round trip: trains
a model big enough for a 100-300 MB last.pt on tiny images (CPU), waits for its first periodic
checkpoint (after a minute), sends SIGTERM to the supervisor's process group as `tini -g` does
(with --image: to the container, whose default command runs with the platform's variables on
the host network), and times the exit, once per stop timeout given. docs/stopping.md holds the
numbers.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pictrain.envvars import CHECKPOINT_MINUTES, RETRY_BASE_DELAY, STOP_TIMEOUT
from pictrain.platform.base import CHECKPOINT_ARTIFACT
from pictrain.synthetic import make_detection_dataset
from tests.emulator import Emulator
from tests.emulator.emulator import loopback_env
from tests.images.dockerutil import Docker, docker_cli

UPLOADS = (("POST", r"^/_storage/upload$"), ("PUT", r"^/_storage/part/"))


class HostJob:
    """`pictrain run` as a process of this machine; SIGTERM to its process group, as `tini -g`
    sends it."""

    def __init__(self, env: dict[str, str], root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pictrain", "run"],
            cwd=root,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)

    def finish(self) -> tuple[int, str]:
        output, _ = self.proc.communicate(timeout=900)
        return self.proc.returncode, output


class ContainerJob:
    """The image's default command as Picsellia runs it (the platform variables, by name), the
    emulator reached on the host network; `docker kill --signal TERM` as `docker stop` sends it.
    The run folder is written to root/runs."""

    def __init__(self, env: dict[str, str], root: Path, image: str) -> None:
        runs = root / "runs"
        runs.mkdir()
        runs.chmod(0o777)  # the image's user is not this one
        self.docker = Docker(docker_cli() or "docker")
        flags = ["--network", "host", "--shm-size", "1g", "-v", f"{runs}:/workspace/runs"]
        self.container = self.docker.start(image, flags=flags, env=env)

    def running(self) -> bool:
        return self.container.running()

    def stop(self) -> None:
        self.docker("kill", "--signal", "TERM", self.container.name)

    def finish(self) -> tuple[int, str]:
        code = int(self.docker("wait", self.container.name, timeout=900).stdout.strip())
        output = self.container.logs()
        self.docker.cleanup()
        return code, output


def measure(
    model: str, mb_per_s: float, round_trip_s: float, stop_timeout: float, image: str | None
) -> str:
    with tempfile.TemporaryDirectory() as tmp, Emulator.start() as emu:
        root = Path(tmp)
        files = make_detection_dataset(
            root / "data", n_images=16, image_size=64, seed=0, splits={"train": 10, "val": 3}
        )
        splits = {name: (coco.parent / "images", coco) for name, coco in files.items()}
        parameters = {"model": model, "epochs": 300, "image_size": 64, "batch_size": 4}
        ids = emu.seed_experiment(splits, parameters={**parameters, "workers": 0})
        for method, path in UPLOADS:
            emu.faults.add(method, re.compile(path), bytes_per_second=mb_per_s * 1e6, times=None)
        emu.faults.add("*", re.compile(r"^/api/"), latency=round_trip_s, times=None)
        env = {
            **loopback_env(),
            **emu.job_env(ids),
            CHECKPOINT_MINUTES.name: "1",
            STOP_TIMEOUT.name: str(stop_timeout),
            RETRY_BASE_DELAY.name: "0.2",
        }
        job = ContainerJob(env, root, image) if image else HostJob(env, root)
        experiment = emu.state.experiments[ids.experiment_id]
        while CHECKPOINT_ARTIFACT not in experiment.artifacts:
            if not job.running():
                raise SystemExit(job.finish()[1][-3000:])
            time.sleep(0.2)
        stored_at = time.monotonic()
        time.sleep(5)  # mid-epoch, the next periodic checkpoint a minute away
        before = {a.object_name for a in experiment.artifacts.values()}
        start = time.monotonic()
        job.stop()
        code, output = job.finish()
        seconds = time.monotonic() - start
        uploaded = sum(
            len(emu.state.storage.get(a.object_name))
            for a in experiment.artifacts.values()
            if a.object_name not in before
        )
        weights = root / "runs" / str(ids.experiment_id) / "train" / "weights"
        sizes = {p.name: p.stat().st_size / 1e6 for p in weights.glob("*.pt")}
        if "not storing the last checkpoint" in output:
            checkpoint = f"kept the one stored {start - stored_at:.0f} s before"
        else:
            checkpoint = "uploaded"
        return (
            f"| {model} | {sizes.get('last.pt', 0):.0f} MB | {sizes.get('best.pt', 0):.0f} MB "
            f"| {mb_per_s:g} MB/s, {1000 * round_trip_s:.0f} ms | {stop_timeout:g} s "
            f"| {seconds:.1f} s | {uploaded / 1e6:.0f} MB | {checkpoint} | {code} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.measure_stop", description=__doc__)
    parser.add_argument("--model", default="yolov8m")
    parser.add_argument("--mb-per-s", type=float, default=25.0, help="upload bandwidth")
    parser.add_argument("--round-trip", type=float, default=0.05, help="seconds per API call")
    parser.add_argument("--stop-timeout", type=float, nargs="+", default=[120.0, 30.0])
    parser.add_argument(
        "--image", help="run the job in this image (its default command), not on this machine"
    )
    args = parser.parse_args()
    print(
        "| model | last.pt | best.pt | uploads, API round trip | stop timeout "
        "| SIGTERM to exit | uploaded after SIGTERM | last checkpoint | exit |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    for timeout in args.stop_timeout:
        row = measure(args.model, args.mb_per_s, args.round_trip, timeout, args.image)
        print(row, flush=True)


if __name__ == "__main__":
    main()
