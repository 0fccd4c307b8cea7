"""Cold start: process start to the first training batch, and `pictrain --help`.

Each run is a fresh process, as a container's is. The first batch is seen from outside: with
plots on, ultralytics writes `train_batch0.jpg` once the first batch has trained; the run is
stopped there. CPU time is the child's own (psutil, or rusage for a finished child): this
process only waits.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psutil

from pictrain.data.convert import convert_detection, write_data_yaml
from pictrain.data.labels import labelmap_from
from pictrain.synthetic import make_detection_dataset
from scripts.bench.report import Bench, BenchResult, seconds
from scripts.bench.timing import Runs, Timing

TARGET_FIRST_BATCH_S = 10.0
TARGET_HELP_S = 1.0
FIRST_BATCH = "train_batch0.jpg"
POLL_S = 0.01
# A measured run: returns (wall seconds, CPU seconds) of a fresh process.
Measure = Callable[[], tuple[float, float]]


@dataclass(frozen=True)
class ColdStartSizes:
    images: int
    image_size: int
    batch: int
    model: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("4. cold start (fresh processes, CPU)")
    group.add_argument("--cold-images", type=int, default=64, help="images on disk")
    group.add_argument("--cold-image-size", type=int, default=64, help="pixels and imgsz")


def benchmarks(args: argparse.Namespace, work: Path) -> list[tuple[str, Bench]]:
    """Batch size and model are the training suite's (--train-batch, --model)."""
    sizes = ColdStartSizes(args.cold_images, args.cold_image_size, args.train_batch, args.model)
    return [
        ("cold start", partial(first_batch, work, sizes, args.repeats, args.seed)),
        ("pictrain --help", partial(cli_help, args.repeats)),
    ]


def first_batch(work: Path, sizes: ColdStartSizes, repeats: int, seed: int) -> BenchResult:
    dataset, data_yaml = _dataset(work / "data", sizes, seed)
    parameters = {
        "epochs": 1,
        "batch_size": sizes.batch,
        "image_size": sizes.image_size,
        "workers": 0,
        "device": "cpu",
        "seed": seed,
    }
    (dataset / "parameters.json").write_text(json.dumps({**parameters, "model": sizes.model}))
    ours_runs, raw_runs = work / "ours", work / "raw"
    pictrain = str(Path(sys.executable).with_name("pictrain"))

    def ours() -> tuple[float, float]:
        shutil.rmtree(ours_runs, ignore_errors=True)
        command = [pictrain, "run", "--local", str(dataset), "--name", "cold"]
        return _until([*command, "--runs-dir", str(ours_runs)], ours_runs / "cold" / "train")

    def raw() -> tuple[float, float]:
        shutil.rmtree(raw_runs, ignore_errors=True)
        arguments = {
            "data": str(data_yaml),
            "epochs": 1,
            "batch": sizes.batch,
            "imgsz": sizes.image_size,
            "workers": 0,
            "device": "cpu",
            "seed": seed,
            "plots": True,
            "project": str(raw_runs),
            "name": "cold",
            "exist_ok": True,
        }
        script = (
            "import sys, json\nfrom ultralytics import YOLO\n"
            f"YOLO('{sizes.model}.yaml').train(**json.loads(sys.argv[1]))"
        )
        command = [sys.executable, "-c", script, json.dumps(arguments)]
        return _until(command, raw_runs / "cold")

    timing = _alternate(ours, raw, repeats)
    return BenchResult(
        title="Cold start to the first training batch",
        what="a fresh process until ultralytics has trained its first batch (CPU)",
        sizes=(
            f"{sizes.images} images of {sizes.image_size} px, already on disk; {sizes.model} "
            f"from its config, batch {sizes.batch}, workers 0"
        ),
        ours="`pictrain run --local DIR`: parameters, COCO conversion and splits, model, train",
        theirs=(
            f"`python -c \"from ultralytics import YOLO; YOLO('{sizes.model}.yaml').train(...)\"`"
            " on the already converted dataset"
        ),
        timing=timing,
        agreement=f"both stop at `{FIRST_BATCH}`, written once the first batch has trained",
        reading=_first_batch_reading(timing),
    )


def cli_help(repeats: int) -> BenchResult:
    pictrain = str(Path(sys.executable).with_name("pictrain"))
    timing = _alternate(
        lambda: _finished([pictrain, "--help"]),
        lambda: _finished([sys.executable, "-c", "pass"]),
        repeats,
    )
    met = "meets" if timing.best_ours < TARGET_HELP_S else "**misses**"
    return BenchResult(
        title="`pictrain --help`",
        what="the console script printing its help, in a fresh process",
        sizes="-",
        ours="`pictrain --help`",
        theirs="`python -c pass`: the interpreter alone, the floor",
        timing=timing,
        agreement="-",
        reading=(
            f"**Reading.** {seconds(timing.best_ours)}, {met} the {TARGET_HELP_S:g} s target: "
            "the command parser imports no torch, ultralytics or SDK; each command imports "
            "what it needs when it runs. "
            f"{seconds(timing.best_ours - timing.best_theirs)} above the bare interpreter."
        ),
    )


def _dataset(folder: Path, sizes: ColdStartSizes, seed: int) -> tuple[Path, Path]:
    """A local dataset folder for pictrain, and its conversion for the raw side."""
    coco = make_detection_dataset(folder / "local", sizes.images, sizes.image_size, seed)["train"]
    names = labelmap_from([coco])
    convert_detection(coco, coco.parent / "images", folder / "yolo", "train", names)
    return folder / "local", write_data_yaml(folder / "yolo", names, ["train"])


def _until(command: list[str], save_dir: Path) -> tuple[float, float]:
    """Run `command` until it writes the first batch's plot; stop it; its wall and CPU time."""
    started = time.perf_counter()
    with subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy()
    ) as child:
        watched = psutil.Process(child.pid)
        while not (save_dir / FIRST_BATCH).exists():
            if child.poll() is not None:
                raise RuntimeError(f"{command[:3]} ended before a batch: {child.stderr.read()!r}")
            if time.perf_counter() - started > 600:
                child.kill()
                raise RuntimeError(f"{command[:3]}: no first batch after 600 s")
            time.sleep(POLL_S)
        wall = time.perf_counter() - started
        cpu = watched.cpu_times()
        child.kill()
    return wall, cpu.user + cpu.system


def _finished(command: list[str]) -> tuple[float, float]:
    """Run `command` to its end; its wall and CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _alternate(ours: Measure, theirs: Measure, repeats: int) -> Timing:
    """As `timing.compare` does: one warm-up each (file caches), then `repeats` rounds taking
    turns to go first; here the times are the child's, not this process's."""
    ours()
    theirs()
    timing = Timing(Runs(), Runs())
    for round_ in range(repeats):
        order = [(ours, timing.ours), (theirs, timing.theirs)]
        for measure, runs in order if round_ % 2 == 0 else order[::-1]:
            wall, cpu = measure()
            runs.wall.append(wall)
            runs.cpu.append(cpu)
    return timing


def _first_batch_reading(timing: Timing) -> str:
    met = "meets" if timing.best_ours <= TARGET_FIRST_BATCH_S else "**misses**"
    cpu_ours, cpu_theirs = min(timing.ours.cpu), min(timing.theirs.cpu)
    return (
        f"**Reading.** pictrain reaches its first batch {seconds(timing.best_ours)} after the "
        f"process starts ({met} the {TARGET_FIRST_BATCH_S:g} s target on the CPU), a raw "
        f"ultralytics script {seconds(timing.best_theirs)}; in CPU time, which the load of a "
        f"shared machine disturbs less, {seconds(cpu_ours)} against {seconds(cpu_theirs)}. "
        "Besides the same imports (torch, ultralytics) and the same trainer set-up, pictrain "
        "reads and validates the parameters, converts and splits the COCO dataset (the raw "
        "side is given it converted), checks the model name and opens the backend: "
        f"{cpu_ours - cpu_theirs:+.2f} s of CPU. On a GPU machine both sides add the CUDA "
        "initialisation (`scripts/gpu-check.sh` measures it there)."
    )
