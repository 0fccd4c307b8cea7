"""Training overhead: pictrain's `train` (callbacks, backend) vs raw `YOLO(...).train(...)`."""

from __future__ import annotations

import argparse
import csv
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from pictrain.data.convert import convert_detection, write_data_yaml
from pictrain.data.labels import labelmap_from
from pictrain.params import parse_parameters
from pictrain.platform.local import LocalBackend
from pictrain.synthetic import make_detection_dataset
from pictrain.train.devices import resolve_devices
from pictrain.train.origin import TrainingOrigin
from pictrain.train.runner import train, training_arguments
from scripts.bench.report import Bench, BenchResult, seconds
from scripts.bench.timing import Timing, compare

# Paths differ between the two runs by construction; every other argument must not.
PATH_ARGS = frozenset({"project", "name", "save_dir"})
SHOWN_METRICS = ("train/box_loss", "val/box_loss")  # of the last epoch, in the report


@dataclass(frozen=True)
class TrainSizes:
    images: int
    image_size: int
    epochs: int
    batch: int
    model: str
    device: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("3. training overhead")
    group.add_argument("--train-images", type=int, default=64, help="train = val images")
    group.add_argument("--train-image-size", type=int, default=64, help="imgsz")
    group.add_argument("--train-epochs", type=int, default=3, help="epochs")
    group.add_argument("--train-batch", type=int, default=16, help="batch size")
    group.add_argument("--model", default="yolov8n", help="ultralytics architecture")
    group.add_argument("--device", default="cpu", help="'' = GPU when present, else CPU")


def benchmarks(args: argparse.Namespace, work: Path) -> list[tuple[str, Bench]]:
    sizes = TrainSizes(
        args.train_images,
        args.train_image_size,
        args.train_epochs,
        args.train_batch,
        args.model,
        args.device,
    )
    return [("training", partial(run, work, sizes, args.repeats, args.seed))]


def run(work: Path, sizes: TrainSizes, repeats: int, seed: int) -> BenchResult:
    source, data_yaml = _dataset(work / "data", sizes, seed)
    params = parse_parameters(
        {
            "epochs": sizes.epochs,
            "batch_size": sizes.batch,
            "image_size": sizes.image_size,
            "workers": 0,
            "device": sizes.device,
            "seed": seed,
        }
    ).params
    devices = resolve_devices(params.device, params.batch_size)
    ours_dir, raw_dir = work / "ours", work / "raw"

    def ours() -> Any:
        shutil.rmtree(ours_dir, ignore_errors=True)
        backend = LocalBackend(source, ours_dir)
        return lambda: train(
            task="detect",
            origin=TrainingOrigin(model=sizes.model, weights_sha256=None),
            weights=None,
            data=data_yaml,
            params=params,
            devices=devices,
            save_dir=ours_dir / "train",
            backend=backend,
        )

    def raw() -> Any:
        shutil.rmtree(raw_dir, ignore_errors=True)
        arguments = _raw_arguments(
            data_yaml, training_arguments(params, devices), raw_dir / "train"
        )
        return lambda: _raw(sizes.model, arguments)

    outcome = compare(ours, raw, repeats)
    timing = outcome.timing
    return BenchResult(
        title="Training overhead",
        what=f"train {sizes.model} from its config on a converted synthetic dataset",
        sizes=(
            f"{sizes.images} images of {sizes.image_size} px (val = train), {sizes.epochs} "
            f"epochs, batch {sizes.batch}, workers 0, device {sizes.device or 'auto'}, "
            f"seed {seed}"
        ),
        ours="`pictrain.train.runner.train` with `LocalBackend` (metrics callbacks, AMP patch)",
        theirs=f"`YOLO('{sizes.model}.yaml').train(...)` with the same arguments",
        timing=timing,
        agreement=_agreement(outcome.ours.save_dir, outcome.theirs),
        reading=_reading(timing, sizes.epochs),
    )


def _dataset(folder: Path, sizes: TrainSizes, seed: int) -> tuple[Path, Path]:
    """The local dataset folder and the YOLO data.yaml our converter made from it."""
    coco = make_detection_dataset(folder / "coco", sizes.images, sizes.image_size, seed)["train"]
    names = labelmap_from([coco])
    convert_detection(coco, coco.parent / "images", folder / "yolo", "train", names)
    return folder / "coco", write_data_yaml(folder / "yolo", names, ["train"])


def _raw_arguments(data_yaml: Path, overrides: dict[str, Any], save_dir: Path) -> dict[str, Any]:
    """What `pictrain.train.runner.train` passes to ultralytics; checked against args.yaml."""
    return {
        "data": str(data_yaml),
        "project": str(save_dir.parent),
        "name": save_dir.name,
        "exist_ok": True,
        "plots": True,
        **overrides,
    }


def _raw(model: str, arguments: dict[str, Any]) -> Path:
    from ultralytics import YOLO

    yolo = YOLO(f"{model}.yaml")
    yolo.train(**arguments)
    return Path(yolo.trainer.save_dir)


def _agreement(ours: Path, raw: Path) -> str:
    """Resolved arguments (args.yaml) equal but for paths; every epoch's metrics equal."""
    ours_args, raw_args = _args(ours), _args(raw)
    differing = sorted(
        key
        for key in ours_args.keys() | raw_args.keys()
        if key not in PATH_ARGS and ours_args.get(key) != raw_args.get(key)
    )
    ours_rows, raw_rows = _results(ours), _results(raw)
    last = ", ".join(f"{key} {ours_rows[-1][key]:.5g}" for key in SHOWN_METRICS)
    columns = len(ours_rows[0])
    checks = [
        "resolved arguments (args.yaml) identical but for paths"
        if not differing
        else f"**arguments differ**: {', '.join(differing)}",
        f"results.csv identical ({len(ours_rows)} epochs x {columns} columns, time aside; {last})"
        if ours_rows == raw_rows
        else "**results.csv differs** (same seed: the training was not deterministic)",
    ]
    verdict = "yes" if not differing and ours_rows == raw_rows else "**no**"
    return f"{verdict}: {'; '.join(checks)}"


def _args(save_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((save_dir / "args.yaml").read_text(encoding="utf-8"))


def _results(save_dir: Path) -> list[dict[str, float]]:
    """Every epoch's losses, metrics and learning rates; `time` (wall clock) left out."""
    with (save_dir / "results.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    return [{key: float(value) for key, value in row.items() if key != "time"} for row in rows]


def _reading(timing: Timing, epochs: int) -> str:
    overhead = timing.best_ours - timing.best_theirs
    spread = max(max(runs.wall) / min(runs.wall) for runs in (timing.ours, timing.theirs)) - 1
    verdict = (
        f"within the run-to-run spread ({spread:.0%} between runs of one side): no overhead is "
        "measurable at this size"
        if timing.ratio <= 1 + spread
        else f"more than the run-to-run spread ({spread:.0%} between runs of one side): an overhead"
    )
    return (
        "**Reading.** Both sides train the same model from scratch on the same converted "
        "dataset with the same resolved arguments, so the difference is what pictrain adds "
        "around ultralytics: `build_model`, `amp.install()` (it replaces ultralytics' AMP "
        "check, a module global, so after the first run the raw side uses it too; on CPU both "
        "skip that check anyway) and the `EpochMetrics` callbacks, which send each epoch's "
        "losses, validation metrics and learning rates to the backend (here `LocalBackend`, "
        f"lines appended to `metrics.jsonl`). The raw run takes {seconds(timing.best_theirs)}; "
        f"ours takes {timing.ratio:.2f}× that, {overhead:+.2f} s in all "
        f"({overhead / epochs:+.2f} s per epoch), {verdict}; the CPU-time ratio is "
        f"{timing.cpu_ratio:.2f}. Whatever pictrain adds is per "
        "epoch and per metric, not per image, so its share falls as datasets grow."
    )
