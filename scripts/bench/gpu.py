"""The GPU check (`scripts/gpu-check.sh`): pictrain's job on a GPU against raw `yolo train`.

For each model, on one GPU, on a synthetic set: `pictrain run --local` (conversion, training,
evaluation, export), then `yolo train` with the arguments our job gave ultralytics, on the
dataset our job converted (or the other way round for the next model). From outside, while each
runs: the time from process start to the first batch (`train_batch0.jpg`), the moment each
epoch's row reaches results.csv and, for ours, the moment its curve points reach the backend
(metrics.jsonl), and GPU utilisation sampled with nvidia-smi. Throughput is train images per
second over the epochs after the first (results.csv's `time`). With several GPUs it then runs
the job on all of them (DDP, AutoBatch per GPU, a checkpoint at every epoch). Last, the GPU
exports (`GPU_EXPORTS`: TensorRT, TorchScript fp16) of one more run, each scored on the test
split and timed: its deployment table (docs/exports.md).

Figures go to a section of docs/benchmarks.md (kept by `make bench`) and a JSON file.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

START, END = "<!-- gpu-check:start -->", "<!-- gpu-check:end -->"
FIRST_BATCH = "train_batch0.jpg"
POLL_S = 0.1
TARGET_RATIO = 0.99
TARGET_UTILISATION = 90.0
# Differ by construction: where each run writes, and the data.yaml (each run of ours converts
# the same dataset into its own folder; the raw runs read the first conversion).
PATH_ARGS = frozenset({"project", "name", "save_dir", "data"})
GPU_EXPORTS = ["torchscript:fp16", "engine:fp16", "engine:int8"]


@dataclass
class Watched:
    """What a training process showed, in seconds after it started."""

    command: list[str]
    returncode: int = -1
    wall: float = 0.0
    first_batch: float | None = None
    epochs: dict[int, float] = field(default_factory=dict)  # results.csv row k appeared
    points: dict[int, float] = field(default_factory=dict)  # metrics.jsonl step k appeared
    checkpoint: float | None = None  # the periodic checkpoint reached the backend
    started_at: float = 0.0  # wall clock, to place GPU samples
    log: str = ""


class GpuSampler:
    """nvidia-smi every 0.25 s in a thread: (wall time, utilisation % per GPU)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, list[float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def mean(self, start: float, end: float) -> float | None:
        """Mean utilisation of the busiest GPUs' average between two wall times."""
        window = [sum(u) / len(u) for t, u in self.samples if start <= t <= end and u]
        return sum(window) / len(window) if window else None

    def _run(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
        while not self._stop.wait(0.25):
            try:
                out = subprocess.run(query, capture_output=True, text=True, timeout=5).stdout
                self.samples.append((time.time(), [float(x) for x in out.split()]))
            except (OSError, ValueError, subprocess.SubprocessError):
                return


def watch(
    command: list[str], env: dict[str, str], save_dir: Path, run_dir: Path | None, log: Path
) -> Watched:
    """Run `command` to its end, noting when its files appear; `run_dir` is a pictrain run."""
    seen = Watched(command, started_at=time.time())
    started = time.perf_counter()
    metrics = run_dir / "metrics.jsonl" if run_dir else None
    checkpoint = run_dir / "artifacts" / "last-checkpoint.pt" if run_dir else None
    with log.open("w") as out, subprocess.Popen(command, env=env, stdout=out, stderr=out) as child:
        while True:
            done = child.poll() is not None
            now = time.perf_counter() - started
            if seen.first_batch is None and (save_dir / FIRST_BATCH).exists():
                seen.first_batch = now
            for step in _rows(save_dir / "results.csv"):
                seen.epochs.setdefault(step, now)
            for step in _steps(metrics):
                seen.points.setdefault(step, now)
            if checkpoint and seen.checkpoint is None and checkpoint.exists():
                seen.checkpoint = now
            if done:
                break
            time.sleep(POLL_S)
    seen.returncode, seen.wall = child.returncode, time.perf_counter() - started
    seen.log = log.read_text(errors="replace")
    return seen


def _rows(results: Path) -> list[int]:
    if not results.is_file():
        return []
    with results.open(newline="") as stream:
        return [int(float(row["epoch"])) for row in csv.DictReader(stream) if row.get("epoch")]


def _steps(metrics: Path | None) -> set[int]:
    if metrics is None or not metrics.is_file():
        return set()
    text = metrics.read_text()
    lines = text.split("\n")[:-1]  # complete lines only
    return {s for s in (json.loads(line)["step"] for line in lines) if s is not None}


def throughput(results: Path, images: int) -> float | None:
    """Train images per second over the epochs after the first (warm-up) one; validation of
    each epoch included, on both sides alike."""
    with results.open(newline="") as stream:
        times = [float(row["time"]) for row in csv.DictReader(stream)]
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return images * (len(times) - 1) / (times[-1] - times[0])


@dataclass(frozen=True)
class Sizes:
    images: int
    image_size: int
    epochs: int
    batch: int
    workers: int
    device: str


class Check:
    def __init__(self, work: Path, sizes: Sizes, sampler: GpuSampler) -> None:
        self.work = work
        self.sizes = sizes
        self.sampler = sampler
        self.dataset = work / "dataset"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.bin = Path(sys.executable).parent
        self.converted: Path | None = None  # data.yaml of our first run, for the raw runs

    def make_dataset(self) -> None:
        from pictrain.synthetic import make_detection_dataset

        if not (self.dataset / "train" / "annotations.json").is_file():
            extra = max(self.sizes.images // 16, 4)
            splits = {"train": self.sizes.images, "val": extra, "test": extra}
            n = sum(splits.values())
            make_detection_dataset(self.dataset, n, self.sizes.image_size, 0, splits=splits)

    def parameters(self, model: str, **more: Any) -> dict[str, Any]:
        return {
            "model": model,
            "epochs": self.sizes.epochs,
            "batch_size": self.sizes.batch,
            "image_size": self.sizes.image_size,
            "workers": self.sizes.workers,
            "device": self.sizes.device,
            "seed": 0,
            **more,
        }

    def ours(self, name: str, parameters: dict[str, Any], **env: str) -> Watched:
        (self.dataset / "parameters.json").write_text(json.dumps(parameters))
        runs = self.work / "runs"
        shutil.rmtree(runs / name, ignore_errors=True)
        command = [str(self.bin / "pictrain"), "run", "--local", str(self.dataset)]
        command += ["--name", name, "--runs-dir", str(runs)]
        run_dir = runs / name
        print(f"gpu-check: {name}: pictrain run --local", file=sys.stderr, flush=True)
        return watch(
            command, {**self.env, **env}, run_dir / "train", run_dir, self.work / f"{name}.log"
        )

    def raw(self, name: str, data_yaml: Path, parameters: dict[str, Any]) -> Watched:
        """`yolo train` with what our job gives ultralytics, on the dataset our job converted."""
        from pictrain.params import parse_parameters
        from pictrain.train.devices import resolve_devices
        from pictrain.train.runner import training_arguments

        params = parse_parameters(parameters).params
        arguments = training_arguments(params, resolve_devices(params.device, params.batch_size))
        arguments = {k: v for k, v in arguments.items() if k != "model"}
        save_dir = self.work / "raw" / name
        shutil.rmtree(save_dir, ignore_errors=True)
        arguments |= {
            "model": f"{parameters['model']}.yaml",
            "data": str(data_yaml),
            "project": str(save_dir.parent),
            "name": name,
            "exist_ok": True,
            "plots": True,
        }
        command = [str(self.bin / "yolo"), "train"]
        command += [f"{k}={_cli(v)}" for k, v in arguments.items()]
        print(f"gpu-check: {name}: yolo train", file=sys.stderr, flush=True)
        return watch(command, self.env, save_dir, None, self.work / f"{name}.log")

    def single_gpu(self, model: str, ours_first: bool) -> dict[str, Any]:
        ours_name, raw_name = f"{model}-pictrain", f"{model}-raw"
        parameters = self.parameters(model)
        if ours_first:
            ours = self.ours(ours_name, parameters)
            self.converted = self.work / "runs" / ours_name / "dataset" / "data.yaml"
            raw = self.raw(raw_name, self.converted, parameters)
        else:  # on the dataset an earlier run of ours converted
            assert self.converted, "the first model runs ours first"
            raw = self.raw(raw_name, self.converted, parameters)
            ours = self.ours(ours_name, parameters)
        ours_dir = self.work / "runs" / ours_name / "train"
        raw_dir = self.work / "raw" / raw_name
        result: dict[str, Any] = {"model": model, "order": "ours first" if ours_first else "raw"}
        for side, seen, folder in (("ours", ours, ours_dir), ("raw", raw, raw_dir)):
            _require(seen, side)
            result[side] = {
                "first_batch_s": seen.first_batch,
                "wall_s": seen.wall,
                "images_per_s": throughput(folder / "results.csv", self.sizes.images),
                "gpu_util": self._utilisation(seen, folder),
            }
        ours_rate, raw_rate = result["ours"]["images_per_s"], result["raw"]["images_per_s"]
        result["ratio"] = ours_rate / raw_rate if ours_rate and raw_rate else None
        result["amp"] = "AMP: on" in ours.log
        result["args_differ"] = _differing(ours_dir / "args.yaml", raw_dir / "args.yaml")
        result["curve_lag_s"] = {
            step: ours.points[step] - at for step, at in ours.epochs.items() if step in ours.points
        }
        result["points_before_exit"] = all(at < ours.wall for at in ours.points.values())
        return result

    def ddp(self, gpus: int) -> dict[str, Any]:
        parameters = self.parameters("yolov8n", batch_size=-1, device="")
        seen = self.ours("yolov8n-ddp", parameters, PICTRAIN_CHECKPOINT_MINUTES="0")
        _require(seen, "ddp")
        folder = self.work / "runs" / "yolov8n-ddp" / "train"
        return {
            "gpus": gpus,
            "ddp_line": next((ln for ln in seen.log.splitlines() if "GPUs in DDP" in ln), None),
            "autobatch_line": next(
                (ln for ln in seen.log.splitlines() if "AutoBatch found" in ln), None
            ),
            "amp": "AMP: on" in seen.log,
            "first_batch_s": seen.first_batch,
            "points": seen.points,
            "epochs": seen.epochs,
            "checkpoint_s": seen.checkpoint,
            "wall_s": seen.wall,
            "gpu_util": self._utilisation(seen, folder),
            "images_per_s": throughput(folder / "results.csv", self.sizes.images),
        }

    def exports(self) -> list[dict[str, Any]]:
        """The deployment table of a run that also makes the GPU exports."""
        parameters = self.parameters("yolov8n", export_formats=["onnx", *GPU_EXPORTS])
        _require(self.ours("yolov8n-exports", parameters), "exports")
        table = self.work / "runs" / "yolov8n-exports" / "evaluation" / "exports.json"
        return json.loads(table.read_text())

    def _utilisation(self, seen: Watched, folder: Path) -> float | None:
        if seen.first_batch is None or not seen.epochs:
            return None
        last_epoch = max(seen.epochs.values())
        return self.sampler.mean(seen.started_at + seen.first_batch, seen.started_at + last_epoch)


def _cli(value: Any) -> str:
    return str(value) if not isinstance(value, str) or value else "''"


def _require(seen: Watched, side: str) -> None:
    if seen.returncode != 0:
        tail = "\n".join(seen.log.splitlines()[-30:])
        raise SystemExit(f"gpu-check: the {side} run failed ({seen.returncode}):\n{tail}")


def _differing(ours: Path, raw: Path) -> list[str]:
    import yaml

    a, b = (yaml.safe_load(p.read_text()) for p in (ours, raw))
    return sorted(k for k in a.keys() | b.keys() if k not in PATH_ARGS and a.get(k) != b.get(k))


def gpu_names() -> list[str]:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except OSError:
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def section(
    facts: dict[str, Any],
    singles: list[dict[str, Any]],
    ddp: dict | str,
    exports: list[dict[str, Any]],
) -> str:
    lines = [
        START,
        "## GPU check",
        "",
        f"Written by `scripts/gpu-check.sh` on {facts['date']}; `make bench` keeps this "
        "section. Each model trains once with `pictrain run --local` and once with `yolo train` "
        "given the same resolved arguments on the same converted dataset; throughput counts "
        "the epochs after the first. Targets: ratio >= "
        f"{TARGET_RATIO}, GPU utilisation >= {TARGET_UTILISATION:g}%.",
        "",
        "| machine | |",
        "|---|---|",
        f"| GPUs | {', '.join(facts['gpus']) or 'none'} |",
        f"| CPU cores | {facts['cores']} |",
        f"| torch | {facts['torch']} |",
        f"| sizes | {facts['sizes']} |",
        f"| whole check | {facts['wall_s']:.0f} s |",
        "",
        "| model | ours img/s | raw img/s | ratio | GPU util ours / raw | first batch ours / raw"
        " | AMP | args | curve lag |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in singles:
        lag = max(r["curve_lag_s"].values(), default=None)
        lines.append(
            f"| {r['model']} ({r['order']}) | {_num(r['ours']['images_per_s'])} | "
            f"{_num(r['raw']['images_per_s'])} | {_num(r['ratio'], 3)}"
            f"{_verdict(r['ratio'], TARGET_RATIO)} | {_num(r['ours']['gpu_util'])}% / "
            f"{_num(r['raw']['gpu_util'])}%{_verdict(r['ours']['gpu_util'], TARGET_UTILISATION)}"
            f" | {_num(r['ours']['first_batch_s'])} s / {_num(r['raw']['first_batch_s'])} s | "
            f"{'on' if r['amp'] else '**off**'} | "
            f"{'identical' if not r['args_differ'] else '**differ: ' + ', '.join(r['args_differ'])}"
            f"{'' if not r['args_differ'] else '**'} | "
            f"{_num(lag, 2)} s{'' if r['points_before_exit'] else ' **after exit**'} |"
        )
    lines.append("")
    if isinstance(ddp, str):
        lines.append(f"DDP: {ddp}")
    else:
        points = ", ".join(f"epoch {k} at {v:.1f} s" for k, v in sorted(ddp["points"].items()))
        lines.append(
            f"DDP on {ddp['gpus']} GPUs: `{ddp['ddp_line']}`; `{ddp['autobatch_line']}`; AMP "
            f"{'on' if ddp['amp'] else '**off**'}; first batch {_num(ddp['first_batch_s'])} s; "
            f"curve points reached the backend live ({points}; the process ended at "
            f"{ddp['wall_s']:.1f} s); checkpoint stored at {_num(ddp['checkpoint_s'])} s; "
            f"{_num(ddp['images_per_s'])} img/s, GPU utilisation {_num(ddp['gpu_util'])}%."
        )
    lines += ["", *_exports_table(exports), END]
    return "\n".join(lines)


def _exports_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "GPU exports (yolov8n, same data; latency: the network on one test image, batch 1, "
        "median of 50 warm runs):",
        "",
        "| format | precision | metric | value | delta | latency ms | images/s | size MB | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        size = row["size_bytes"] / 1e6 if row["size_bytes"] is not None else None
        lines.append(
            f"| {row['format']} | {row['precision']} | {row['metric']} | {_num(row['value'], 4)} "
            f"| {_num(row['delta'], 4)} | {_num(row['latency_ms'], 2)} | "
            f"{_num(row['images_per_s'])} | {_num(size)} | {row['note'] or ''} |"
        )
    return lines


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _verdict(value: float | None, target: float) -> str:
    return "" if value is None else (" (met)" if value >= target else " (**missed**)")


def write(dest: Path, text: str) -> None:
    """Replace this check's section of `dest`, or append it."""
    current = dest.read_text(encoding="utf-8") if dest.is_file() else ""
    if START in current and END in current:
        before, rest = current.split(START, 1)
        current = before.rstrip("\n") + "\n\n" + rest.split(END, 1)[1].lstrip("\n")
    dest.write_text(current.rstrip("\n") + "\n\n" + text + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench.gpu", description=__doc__)
    parser.add_argument("--images", type=int, default=1024, help="train images")
    parser.add_argument("--image-size", type=int, default=640)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32, help="per run (one GPU)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--models", default="yolov8n,yolo11n")
    parser.add_argument("--device", default="0", help="single-GPU runs ('cpu' for a dry run)")
    parser.add_argument("--work", type=Path, default=Path("runs/gpu-check"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()
    started = time.perf_counter()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_CONFIG_DIR"] = str((args.work / "yolo-config").resolve())
    from pictrain import offline

    offline.configure_environment()
    offline.install_assets()
    import torch

    sizes = Sizes(args.images, args.image_size, args.epochs, args.batch, args.workers, args.device)
    gpus = gpu_names()
    with GpuSampler() as sampler:
        check = Check(args.work, sizes, sampler)
        check.make_dataset()
        singles = [
            check.single_gpu(model, ours_first=i % 2 == 0)
            for i, model in enumerate(args.models.split(","))
        ]
        ddp: dict | str = (
            check.ddp(len(gpus))
            if len(gpus) > 1 and args.device != "cpu"
            else f"{len(gpus)} GPU on this machine, nothing to distribute (the DDP worker path "
            "is tested on the CPU by tests/e2e/test_ddp.py)"
        )
        exports = check.exports()
    facts = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "gpus": gpus,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "sizes": f"{asdict(sizes)}",
        "wall_s": time.perf_counter() - started,
    }
    (args.work / "results.json").write_text(
        json.dumps(
            {"facts": facts, "single_gpu": singles, "ddp": ddp, "exports": exports},
            indent=2,
            default=str,
        )
    )
    write(args.out, section(facts, singles, ddp, exports))
    print(f"gpu-check: wrote {args.out} and {args.work / 'results.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
