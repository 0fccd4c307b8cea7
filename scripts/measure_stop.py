"""How long `pictrain run` takes from SIGTERM to exit with a realistic checkpoint upload.

`python -m scripts.measure_stop [--model yolov8m] [--mb-per-s 25] [--stop-timeout 120 30]`

Against the emulator, uploads slowed to a bandwidth and every API call to a round trip: trains
a model big enough for a 100-300 MB last.pt on tiny images (CPU), waits for its first periodic
checkpoint (after a minute), sends SIGTERM to the supervisor's process group as `tini -g` does,
and times the exit, once per stop timeout given. docs/stopping.md holds the numbers.
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

UPLOADS = (("POST", r"^/_storage/upload$"), ("PUT", r"^/_storage/part/"))


def measure(model: str, mb_per_s: float, round_trip_s: float, stop_timeout: float) -> str:
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
            **os.environ,
            **loopback_env(),
            **emu.job_env(ids),
            CHECKPOINT_MINUTES.name: "1",
            STOP_TIMEOUT.name: str(stop_timeout),
            RETRY_BASE_DELAY.name: "0.2",
        }
        job = subprocess.Popen(
            [sys.executable, "-m", "pictrain", "run"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        experiment = emu.state.experiments[ids.experiment_id]
        while CHECKPOINT_ARTIFACT not in experiment.artifacts:
            if job.poll() is not None:
                raise SystemExit(job.stdout.read()[-3000:] if job.stdout else "job ended")
            time.sleep(0.2)
        stored_at = time.monotonic()
        time.sleep(5)  # mid-epoch, the next periodic checkpoint a minute away
        before = {a.object_name for a in experiment.artifacts.values()}
        start = time.monotonic()
        os.killpg(job.pid, signal.SIGTERM)
        output, _ = job.communicate(timeout=900)
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
            f"| {seconds:.1f} s | {uploaded / 1e6:.0f} MB | {checkpoint} | {job.returncode} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.measure_stop", description=__doc__)
    parser.add_argument("--model", default="yolov8m")
    parser.add_argument("--mb-per-s", type=float, default=25.0, help="upload bandwidth")
    parser.add_argument("--round-trip", type=float, default=0.05, help="seconds per API call")
    parser.add_argument("--stop-timeout", type=float, nargs="+", default=[120.0, 30.0])
    args = parser.parse_args()
    print(
        "| model | last.pt | best.pt | uploads, API round trip | stop timeout "
        "| SIGTERM to exit | uploaded after SIGTERM | last checkpoint | exit |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    for timeout in args.stop_timeout:
        print(measure(args.model, args.mb_per_s, args.round_trip, timeout), flush=True)


if __name__ == "__main__":
    main()
