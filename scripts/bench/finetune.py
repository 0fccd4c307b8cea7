"""Fine-tune against scratch: the test mAP of the same short training on a synthetic target set,
started from a model pretrained on another synthetic set and from scratch, both through the job
a container runs (`pictrain.job.Job` on a local folder).

The pretrained model is put where an image keeps its weights (`PICTRAIN_WEIGHTS_DIR/<model>.pt`),
so the fine-tuned run finds it as it would find the image's COCO weights (source `image`); the
scratch run sets `pretrained: false`. No real pretrained weights are reachable here, so the
source set stands in for COCO: what this measures is the job's path, not COCO's gain.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from pictrain.checksums import sha256
from pictrain.config import ModelConfig
from pictrain.envvars import WEIGHTS_DIR
from pictrain.job import Job
from pictrain.platform.local import LocalBackend
from pictrain.synthetic import make_detection_dataset
from scripts.bench.report import Bench, BenchResult
from scripts.bench.timing import compare

METRICS = ("test/mAP50-95(B)", "test/mAP50(B)")
TARGET_SPLITS = {"train": 60, "val": 20, "test": 20}


@dataclass(frozen=True)
class FinetuneSizes:
    source_images: int
    source_epochs: int
    images: int
    epochs: int
    image_size: int
    batch: int
    model: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("6. fine-tune against scratch")
    group.add_argument("--finetune-source-images", type=int, default=160, help="pretraining set")
    group.add_argument("--finetune-source-epochs", type=int, default=15, help="pretraining epochs")
    group.add_argument(
        "--finetune-images", type=int, default=60, help="target set (60/20/20 train/val/test)"
    )
    group.add_argument("--finetune-epochs", type=int, default=5, help="epochs on the target set")
    group.add_argument("--finetune-image-size", type=int, default=96, help="pixels and imgsz")
    group.add_argument(
        "--finetune-repeats",
        type=int,
        default=1,
        help="N of best-of-N here (each run is a whole job; the mAP does not vary with N)",
    )


def benchmarks(args: argparse.Namespace, work: Path) -> list[tuple[str, Bench]]:
    """Batch size and model are the training suite's (--train-batch, --model)."""
    sizes = FinetuneSizes(
        args.finetune_source_images,
        args.finetune_source_epochs,
        args.finetune_images,
        args.finetune_epochs,
        args.finetune_image_size,
        args.train_batch,
        args.model,
    )
    run = partial(compare_starts, work, sizes, args.finetune_repeats, args.seed)
    return [("fine-tune against scratch", run)]


def compare_starts(work: Path, sizes: FinetuneSizes, repeats: int, seed: int) -> BenchResult:
    weights = _pretrain(work / "source", sizes, seed + 1)
    previous = WEIGHTS_DIR.read()
    WEIGHTS_DIR.set(str(weights.parent))
    try:
        target = work / "target"
        make_detection_dataset(target, sizes.images, sizes.image_size, seed, TARGET_SPLITS)
        parameters = _parameters(sizes, sizes.epochs, seed)
        finetune = _view(target, work / "finetune", parameters)
        scratch = _view(target, work / "scratch", {**parameters, "pretrained": False})
        outcome = compare(
            partial(_contender, finetune, sizes.model),
            partial(_contender, scratch, sizes.model),
            repeats,
        )
    finally:
        WEIGHTS_DIR.set(previous)
    ours, theirs = _results(outcome.ours), _results(outcome.theirs)
    return BenchResult(
        title="Fine-tune against scratch",
        what=(
            f"{sizes.model}, {sizes.epochs} epochs on a synthetic target set, from a model "
            "pretrained on another synthetic set and from scratch; test mAP of each"
        ),
        sizes=(
            f"pretraining: {sizes.source_images} images (80/20 train/val), {sizes.source_epochs} "
            f"epochs from scratch; target: {sizes.images} images (60/20/20 train/val/test, "
            f"another seed), {sizes.epochs} epochs; {sizes.image_size} px, batch {sizes.batch}, "
            f"workers 0, CPU, seed {seed}"
        ),
        ours=(
            "`pictrain run --local` with the pretrained model as the image's weights "
            f"(`{WEIGHTS_DIR.name}/{sizes.model}.pt`, source `image`)"
        ),
        theirs="the same run with `pretrained: false` (source `none`)",
        timing=outcome.timing,
        agreement=_agreement(ours, theirs, weights),
        reading=_reading(ours, theirs, sizes),
        rows=[
            (f"**{name}, fine-tuned / from scratch**", f"**{ours[name]:.3f}** / {theirs[name]:.3f}")
            for name in METRICS
        ],
        metrics={
            **{f"finetune {name}": round(ours[name], 4) for name in METRICS},
            **{f"scratch {name}": round(theirs[name], 4) for name in METRICS},
        },
    )


def _parameters(sizes: FinetuneSizes, epochs: int, seed: int) -> dict[str, Any]:
    return {
        "model": sizes.model,
        "epochs": epochs,
        "batch_size": sizes.batch,
        "image_size": sizes.image_size,
        "workers": 0,
        "device": "cpu",
        "seed": seed,
        "patience": epochs,
    }


def _pretrain(folder: Path, sizes: FinetuneSizes, seed: int) -> Path:
    """The source model, trained from scratch by the job, where an image keeps its weights."""
    make_detection_dataset(
        folder / "data", sizes.source_images, sizes.image_size, seed, {"train": 80, "val": 20}
    )
    parameters = {**_parameters(sizes, sizes.source_epochs, seed), "pretrained": False}
    (folder / "data" / "parameters.json").write_text(json.dumps(parameters))
    run_dir = _job(folder / "data", folder / "run", sizes.model)
    weights = folder / "image-weights" / f"{sizes.model}.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / "artifacts" / "best-model.pt", weights)
    return weights


def _view(target: Path, folder: Path, parameters: dict[str, Any]) -> Path:
    """A dataset folder of the target's splits with its own parameters.json."""
    folder.mkdir(parents=True)
    for split in TARGET_SPLITS:
        (folder / split).symlink_to(target / split, target_is_directory=True)
    (folder / "parameters.json").write_text(json.dumps(parameters))
    return folder


def _contender(dataset: Path, model: str) -> Any:
    run_dir = dataset.parent / f"{dataset.name}-run"
    shutil.rmtree(run_dir, ignore_errors=True)
    return lambda: _job(dataset, run_dir, model)


def _job(dataset: Path, run_dir: Path, model: str) -> Path:
    config = ModelConfig(task="detect", model=model)
    code = Job(LocalBackend(dataset, run_dir), run_dir, config).run()
    if code != 0:
        raise RuntimeError(f"the job on {dataset} failed ({code}): {run_dir / 'status.json'}")
    return run_dir


def _results(run_dir: Path) -> dict[str, Any]:
    """The run's test metrics and its starting weights, from its own files."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    values = {r["name"]: r["value"] for r in records if r["step"] is None}
    manifest = json.loads((run_dir / "artifacts" / "manifest.json").read_text())
    config = yaml.safe_load((run_dir / "artifacts" / "config.yaml").read_text())
    return {
        **{name: values.get(name, 0.0) for name in METRICS},
        "starting": manifest["inputs"]["starting_weights"],
        "parameters": {k: v for k, v in config["parameters"].items() if k != "pretrained"},
    }


def _agreement(ours: dict[str, Any], theirs: dict[str, Any], weights: Path) -> str:
    expected = {"source": "image", "file": weights.name, "sha256": sha256(weights)}
    started = ours["starting"] == expected
    scratch = theirs["starting"]["source"] == "none"
    same = ours["parameters"] == theirs["parameters"]
    verdict = "yes" if started and scratch and same else "**no**"
    return (
        f"{verdict}: the fine-tuned run's manifest records the pretrained file "
        f"({'its sha256' if started else '**not** its sha256'}, source `image`), the other "
        f"run's source `{theirs['starting']['source']}`; the resolved parameters of the two "
        f"runs (config.yaml) {'are equal' if same else '**differ**'} but for `pretrained`"
    )


def _reading(ours: dict[str, Any], theirs: dict[str, Any], sizes: FinetuneSizes) -> str:
    main = METRICS[0]
    gain = ours[main] - theirs[main]
    measured = (
        "a start that has already learnt related images is worth more than random weights "
        "after the same short training"
        if gain > 0
        else "**not** that a pretrained start helps: at these sizes it did not"
    )
    return (
        f"**Reading.** After {sizes.epochs} epochs on the target set, the run that started from "
        f"the pretrained model scores {main} {ours[main]:.3f}, the run from scratch "
        f"{theirs[main]:.3f} ({gain:+.3f}). What this shows: a run whose experiment brings no "
        "weights starts from the image's file for its model (the manifest's sha256 is that "
        f"file's), and, here, {measured}. What it cannot show: how much the real COCO or "
        "ImageNet weights add on real images. No release weights are reachable here, so the "
        "source set stands in for COCO; it is far closer to the target (the same three coloured "
        "shapes, another seed) than COCO is to a user's data, which flatters the gain, and far "
        "smaller (a few hundred tiny images against COCO's 118,000), which understates it. Both "
        "runs do the same work, so their time ratio says nothing about pictrain; it is shown for "
        "the format's sake."
    )
