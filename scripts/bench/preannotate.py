"""Pre-annotation: its throughput against ultralytics' own `predict` on the same export and
files, and the active-learning check: the model's test mAP after adding the N pool images our
scores pick against N picked at random (a few seeds), every model trained by the job a
container runs (`pictrain.job.Job` on a local folder).

The pool is synthetic, built as unlabelled data arrives in practice: fresh images, and
near-copies of images already labelled (a camera's bursts, re-encoded uploads); labels come
from the generator (the oracle a reviewer stands for).
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pictrain.config import ModelConfig
from pictrain.evaluate.onnx_model import read_image
from pictrain.job import Job
from pictrain.platform.local import LocalBackend
from pictrain.preannotate.local import LocalFolder
from pictrain.preannotate.model import Predictor
from pictrain.preannotate.params import read_parameters
from pictrain.preannotate.run import Item, preannotate
from pictrain.preannotate.scoring import Candidate, Signals
from pictrain.preannotate.shapes import Found
from pictrain.synthetic import make_detection_dataset
from scripts.bench.report import Bench, BenchResult
from scripts.bench.timing import compare

METRIC = "test/mAP50-95(B)"
SPLITS = {"train": 70, "val": 15, "test": 15}  # the labelled start, its val and test


@dataclass(frozen=True)
class Sizes:
    labelled: int  # train images labelled at the start
    fresh: int  # new images in the pool
    copies: int  # near-copies of labelled images in the pool
    pick: int  # images added to the labelled set
    start_epochs: int  # the first model, from scratch
    epochs: int  # fine-tuning it on the start plus the picks
    image_size: int
    batch: int
    model: str
    seeds: int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("7. pre-annotation and what to label next")
    group.add_argument("--preannotate-labelled", type=int, default=60, help="labelled at start")
    group.add_argument("--preannotate-fresh", type=int, default=120, help="new images in the pool")
    group.add_argument(
        "--preannotate-copies",
        type=int,
        default=120,
        help="near-copies of labelled ones in the pool",
    )
    group.add_argument("--preannotate-pick", type=int, default=40, help="images added (N)")
    group.add_argument(
        "--preannotate-start-epochs", type=int, default=30, help="the first model, from scratch"
    )
    group.add_argument(
        "--preannotate-epochs", type=int, default=10, help="fine-tuning it with the picks"
    )
    group.add_argument("--preannotate-image-size", type=int, default=96, help="pixels and imgsz")
    group.add_argument("--preannotate-seeds", type=int, default=3, help="random picks (seeds)")


def benchmarks(args: argparse.Namespace, work: Path) -> list[tuple[str, Bench]]:
    sizes = Sizes(
        args.preannotate_labelled,
        args.preannotate_fresh,
        args.preannotate_copies,
        args.preannotate_pick,
        args.preannotate_start_epochs,
        args.preannotate_epochs,
        args.preannotate_image_size,
        args.train_batch,
        args.model,
        args.preannotate_seeds,
    )
    start = cache(partial(_start, work, sizes, args.seed))
    return [
        ("pre-annotation throughput", partial(throughput, start, sizes, args.repeats)),
        ("what to label next", partial(label_next, start, work, sizes, args.seed)),
    ]


@dataclass(frozen=True)
class Start:
    data: Path  # train (the labelled start), val, test
    pool: Path  # images/ and annotations.json (the oracle's labels)
    run: Path  # the first model's run folder
    copies: frozenset[str]  # pool files that are near-copies of labelled images


def _start(work: Path, sizes: Sizes, seed: int) -> Start:
    """The labelled start and the pool, and the model trained on the start."""
    total = round(sizes.labelled * 100 / SPLITS["train"])
    data = work / "data"
    make_detection_dataset(data, total, sizes.image_size, seed, SPLITS)
    pool = work / "pool"
    make_detection_dataset(pool, sizes.fresh, sizes.image_size, seed + 100)
    copies = _add_copies(data / "train", pool / "train", sizes.copies, seed)
    run = _train(data, work / "start-run", sizes, seed, sizes.start_epochs)
    return Start(data, pool / "train", run, frozenset(copies))


def _add_copies(labelled: Path, pool: Path, count: int, seed: int) -> list[str]:
    """`count` near-copies of labelled images (brightness shift, noise, JPEG at 70), with
    their labels, added to the pool."""
    rng = np.random.default_rng(seed)
    source = json.loads((labelled / "annotations.json").read_text())
    document = json.loads((pool / "annotations.json").read_text())
    names = []
    for k in range(count):
        image = source["images"][k % len(source["images"])]
        pixels = read_image(labelled / "images" / image["file_name"]).astype(np.float32)
        pixels += rng.integers(-15, 16) + rng.normal(0, 6, pixels.shape)
        name = f"copy-{k:05d}.jpg"
        shifted = np.clip(pixels, 0, 255).astype(np.uint8)
        cv2.imwrite(str(pool / "images" / name), shifted, [cv2.IMWRITE_JPEG_QUALITY, 70])
        _append(document, source, image, name)
        names.append(name)
    (pool / "annotations.json").write_text(json.dumps(document))
    return names


def _append(
    document: dict[str, Any], source: dict[str, Any], image: dict[str, Any], name: str
) -> None:
    """`image` of the COCO `source`, with its annotations, into `document` as file `name`:
    new ids, categories by name (the splits number them apart)."""
    image_id = max(i["id"] for i in document["images"]) + 1
    document["images"].append({**image, "id": image_id, "file_name": name})
    named = {c["id"]: c["name"] for c in source["categories"]}
    ids = {c["name"]: c["id"] for c in document["categories"]}
    for annotation in (a for a in source["annotations"] if a["image_id"] == image["id"]):
        number = max((a["id"] for a in document["annotations"]), default=0) + 1
        category = ids[named[annotation["category_id"]]]
        document["annotations"].append(
            {**annotation, "id": number, "image_id": image_id, "category_id": category}
        )


def _train(data: Path, run_dir: Path, sizes: Sizes, seed: int, epochs: int) -> Path:
    """The job on a local folder: from scratch, or from the folder's pretrained-weights.pt."""
    parameters = {
        "model": sizes.model,
        "epochs": epochs,
        "batch_size": sizes.batch,
        "image_size": sizes.image_size,
        "workers": 0,
        "device": "cpu",
        "seed": seed,
        "patience": epochs,
        "pretrained": (data / "pretrained-weights.pt").is_file(),
    }
    (data / "parameters.json").write_text(json.dumps(parameters))
    shutil.rmtree(run_dir, ignore_errors=True)
    code = Job(
        LocalBackend(data, run_dir), run_dir, ModelConfig(task="detect", model=sizes.model)
    ).run()
    if code != 0:
        raise RuntimeError(f"training on {data} failed ({code}): {run_dir / 'status.json'}")
    return run_dir


def _metric(run_dir: Path) -> float:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return next(r["value"] for r in records if r["name"] == METRIC and r["step"] is None)


# --- throughput ---------------------------------------------------------------------------------


def throughput(start: Any, sizes: Sizes, repeats: int) -> BenchResult:
    begun = start()
    model = begun.run / "artifacts" / "model-latest.onnx"
    files = sorted((begun.pool / "images").iterdir())
    out = begun.pool.parent / "preannotated.json"

    def ours() -> Any:
        predictor = Predictor.load(model, "model", None, scoring=False)
        params = read_parameters({"to_label": 0}).params
        return lambda: _ours(predictor, params, begun.pool / "images", out)

    def theirs() -> Any:
        from ultralytics import YOLO

        onnx = YOLO(str(model), task="detect")
        return lambda: _theirs(onnx, files, sizes.image_size)

    outcome = compare(ours, theirs, repeats)
    count = len(files)
    scored = _scored_rate(model, begun.pool / "images", out)
    ours_rate, theirs_rate = count / outcome.timing.best_ours, count / outcome.timing.best_theirs
    boxes_ours, boxes_theirs = outcome.ours, outcome.theirs
    return BenchResult(
        title="Pre-annotation throughput",
        what=(
            "the trained model's `model-latest.onnx` over a folder of images: read, predict, "
            "keep at the threshold, write the COCO file (ours) against ultralytics' own `predict` "
            "on the same export and files, iterating its results (boxes, classes, scores)"
        ),
        sizes=(
            f"{count} images of {sizes.image_size} px ({sizes.fresh} new, {sizes.copies} "
            f"near-copies), {sizes.model} export at {sizes.image_size} px, CPU, onnxruntime"
        ),
        ours="`preannotate` over a `LocalFolder` (`pictrain preannotate --local`, no scoring)",
        theirs=(
            f"`YOLO('model-latest.onnx').predict(files, imgsz={sizes.image_size}, conf=0.25, "
            "stream=True)`"
        ),
        timing=outcome.timing,
        agreement=(
            f"{'yes' if boxes_ours == boxes_theirs else '**no**'}: {boxes_ours} boxes kept by "
            f"ours, {boxes_theirs} by ultralytics at the same threshold"
        ),
        reading=(
            f"**Reading.** Pre-annotation runs at {ours_rate:.0f} images/s on this CPU against "
            f"{theirs_rate:.0f} for ultralytics' `predict` on the same ONNX file. With the "
            f"what-to-label-next scores (a second, mirrored prediction per image) it runs at "
            f"{scored:.0f} images/s. Both sides decode the same raw head with the same NMS, so "
            "the difference is the work around the network: ultralytics builds a `Results` "
            "object per image and converts through torch; ours stays in numpy. On the "
            "platform, downloading and writing the annotations add to this, batch by batch."
        ),
        rows=[
            ("**images/s, ours / ultralytics**", f"**{ours_rate:.0f}** / {theirs_rate:.0f}"),
            ("images/s with the to-label scores (flip)", f"{scored:.0f}"),
        ],
        metrics={
            "ours images/s": round(ours_rate, 1),
            "ultralytics images/s": round(theirs_rate, 1),
            "ours with scores images/s": round(scored, 1),
        },
    )


def _ours(predictor: Predictor, params: Any, folder: Path, out: Path) -> int:
    target = LocalFolder(folder, out, predictor.model)
    summary, _ = preannotate(target, predictor, params)
    target.save()
    return summary.shapes


def _theirs(model: Any, files: list[Path], size: int) -> int:
    kept = 0
    for result in model.predict(
        [str(f) for f in files], imgsz=size, conf=0.25, stream=True, verbose=False
    ):
        boxes = result.boxes
        kept += len(
            list(zip(boxes.xyxy.tolist(), boxes.cls.tolist(), boxes.conf.tolist(), strict=True))
        )
    return kept


def _scored_rate(model: Path, folder: Path, out: Path) -> float:
    import time

    predictor = Predictor.load(model, "model", None, scoring=True)
    params = read_parameters({"to_label": 20}).params
    target = LocalFolder(folder, out, predictor.model)
    started = time.perf_counter()
    preannotate(target, predictor, params)
    return len(target.files) / (time.perf_counter() - started)


# --- the active-learning check -----------------------------------------------------------------


class _Pool:
    """The labelled start (as a human's) and the pool (no label), as the pass's target: the
    picks are what it keeps."""

    form = "rectangles"

    def __init__(self, labelled: Path, pool: Path, names: list[str]) -> None:
        self.labels = names
        self.files = [(p, "human") for p in sorted(labelled.iterdir())]
        self.files += [(p, "new") for p in sorted(pool.iterdir())]
        self.picks: list[Candidate] = []

    def batches(self, size: int) -> Iterator[list[Item]]:
        for start in range(0, len(self.files), size):
            chunk = self.files[start : start + size]
            yield [Item(p.name, p.name, p, state) for p, state in chunk]  # type: ignore[arg-type]

    def write(self, found: list[tuple[Item, list[Found]]], replace: bool) -> dict[str, str]:
        return {}

    def score(self, item: Item, signals: Signals) -> None:
        pass

    def finish(self, picks: list[Candidate]) -> list[str]:
        self.picks = picks
        return []


def label_next(start: Any, work: Path, sizes: Sizes, seed: int) -> BenchResult:
    begun = start()
    model = begun.run / "artifacts" / "model-latest.onnx"
    pool = sorted(p.name for p in (begun.pool / "images").iterdir())
    rng = np.random.default_rng(seed)

    def scored() -> Any:
        predictor = Predictor.load(model, "model", None, scoring=True)
        params = read_parameters({"to_label": sizes.pick}).params

        def pick() -> list[str]:
            target = _Pool(begun.data / "train" / "images", begun.pool / "images", predictor.names)
            preannotate(target, predictor, params)
            return [p.key for p in target.picks]

        return pick

    def drawn() -> Any:
        return lambda: sorted(rng.choice(pool, size=sizes.pick, replace=False).tolist())

    outcome = compare(scored, drawn, 1)  # what picking costs: the scoring pass, or a draw
    ours = outcome.ours
    started_at = _metric(begun.run)

    def trained(picks: list[str], name: str, training_seed: int) -> float:
        """The first model fine-tuned on the start plus `picks`, as continuous training does."""
        data = _with_picks(begun, picks, work / name)
        shutil.copyfile(begun.run / "artifacts" / "best-model.pt", data / "pretrained-weights.pt")
        return _metric(_train(data, work / f"{name}-run", sizes, training_seed, sizes.epochs))

    results: dict[str, list[float]] = {"ours": [], "random": [], "new": []}
    copies_random = []
    new = [name for name in pool if name not in begun.copies]
    rng = np.random.default_rng(seed)
    for k in range(sizes.seeds):
        chosen = sorted(rng.choice(pool, size=sizes.pick, replace=False).tolist())
        copies_random.append(sum(name in begun.copies for name in chosen))
        results["random"].append(trained(chosen, f"random-{k}", seed + k))
        chosen_new = sorted(rng.choice(new, size=sizes.pick, replace=False).tolist())
        results["new"].append(trained(chosen_new, f"new-{k}", seed + k))
        results["ours"].append(trained(ours, f"ours-{k}", seed + k))
    mean_ours, mean_random = float(np.mean(results["ours"])), float(np.mean(results["random"]))
    mean_new = float(np.mean(results["new"]))
    copies_ours = sum(name in begun.copies for name in ours)
    return BenchResult(
        title="What to label next: picked by our scores against at random",
        what=(
            f"the test {METRIC} of the model fine-tuned on the labelled start plus N pool images "
            "with their labels, picked by the pre-annotation's scores (uncertainty: confidence, "
            "margin, flip; no near-duplicate of a labelled or picked image) or at random"
        ),
        sizes=(
            f"start: {sizes.labelled} labelled images (val and test apart); pool: "
            f"{sizes.fresh} new images + {sizes.copies} near-copies of labelled ones; N = "
            f"{sizes.pick}; {sizes.model}: the first model {sizes.start_epochs} epochs from "
            f"scratch on the start, then fine-tuned {sizes.epochs} epochs on the start plus the "
            f"picks (as continuous training does); {sizes.image_size} px, batch {sizes.batch}, "
            f"CPU; {sizes.seeds} seeds (each: a random pick, and both fine-tunings with that "
            "seed)"
        ),
        ours=(
            "the N best scores of `preannotate` on the pool (the first model's export); the "
            "time is this scoring pass"
        ),
        theirs="N pool images drawn at random (one draw per seed); the time is a draw",
        timing=outcome.timing,
        agreement=(
            f"ours picked {copies_ours} near-copies of labelled images, random "
            f"{', '.join(map(str, copies_random))} (of {sizes.pick})"
        ),
        reading=_reading(started_at, results, mean_ours, mean_random, mean_new, sizes),
        rows=[
            (f"{METRIC} before adding (start only)", f"{started_at:.3f}"),
            (
                f"**{METRIC}, ours / random (mean of {sizes.seeds})**",
                f"**{mean_ours:.3f}** / {mean_random:.3f}",
            ),
            (
                f"{METRIC}, random among the new images only (no copy: what dropping "
                "duplicates alone gives)",
                f"{mean_new:.3f}",
            ),
            ("per seed, ours", ", ".join(f"{v:.3f}" for v in results["ours"])),
            ("per seed, random", ", ".join(f"{v:.3f}" for v in results["random"])),
            ("per seed, random new only", ", ".join(f"{v:.3f}" for v in results["new"])),
        ],
        metrics={
            "start mAP50-95": round(started_at, 4),
            "ours mAP50-95 mean": round(mean_ours, 4),
            "random mAP50-95 mean": round(mean_random, 4),
            "ours mAP50-95 per seed": ", ".join(f"{v:.4f}" for v in results["ours"]),
            "random mAP50-95 per seed": ", ".join(f"{v:.4f}" for v in results["random"]),
            "random new-only mAP50-95 mean": round(mean_new, 4),
            "random new-only mAP50-95 per seed": ", ".join(f"{v:.4f}" for v in results["new"]),
            "ours near-copies picked": copies_ours,
        },
    )


def _with_picks(begun: Start, picks: list[str], folder: Path) -> Path:
    """A dataset folder: the start's val and test, and its train plus the picks' images and
    their (oracle) labels."""
    shutil.rmtree(folder, ignore_errors=True)
    for split in ("val", "test"):
        (folder / split).parent.mkdir(parents=True, exist_ok=True)
        (folder / split).symlink_to(begun.data / split, target_is_directory=True)
    train = folder / "train"
    (train / "images").mkdir(parents=True)
    document = json.loads((begun.data / "train" / "annotations.json").read_text())
    pool = json.loads((begun.pool / "annotations.json").read_text())
    for image in document["images"]:
        shutil.copyfile(
            begun.data / "train" / "images" / image["file_name"],
            train / "images" / image["file_name"],
        )
    wanted = set(picks)
    for image in pool["images"]:
        if image["file_name"] in wanted:
            name = f"pool-{image['file_name']}"
            shutil.copyfile(begun.pool / "images" / image["file_name"], train / "images" / name)
            _append(document, pool, image, name)
    (train / "annotations.json").write_text(json.dumps(document))
    return folder


def _reading(
    started_at: float,
    results: dict[str, list[float]],
    mean_ours: float,
    mean_random: float,
    mean_new: float,
    sizes: Sizes,
) -> str:
    against_random = _compared(results["ours"], results["random"], "drawn at random")
    against_new = _compared(results["ours"], results["new"], "drawn among the new images")
    return (
        f"**Reading.** From {started_at:.3f} on the labelled start alone, adding {sizes.pick} "
        f"images picked by our scores gives {mean_ours:.3f} on average, {sizes.pick} drawn at "
        f"random {mean_random:.3f}, {sizes.pick} drawn at random among the new images only "
        f"{mean_new:.3f}. Against random picks: {against_random}. Against random picks that "
        f"never take a copy: {against_new}. Half the pool is near-copies of images already "
        "labelled, as bursts and re-uploads make it in practice: a random draw spends about "
        "half its budget on them, the diversity rule none; the third arm separates that from "
        "the uncertainty signals' choice among the new images. What it cannot show: the size "
        "of the gain on real data, where images differ more than these shapes and one model's "
        f"uncertainty is a noisier guide; {sizes.seeds} seeds are few, and on this easy data "
        "every arm ends close. The timed pair is what picking costs (our scoring pass over the "
        "pool against a random draw), not the trainings."
    )


def _compared(ours: list[float], theirs: list[float], what: str) -> str:
    """A difference within the seeds' spread of it is none; ours ahead only where the mean
    says so and most seeds agree."""
    differences = np.array(ours) - np.array(theirs)
    mean, spread = float(differences.mean()), float(differences.std())
    wins = int((differences > 0).sum())
    told = f"{mean:+.3f} on average, spread {spread:.3f}, ahead in {wins} of {len(ours)} seeds"
    if abs(mean) <= spread or (mean > 0) != (wins * 2 > len(ours)):
        return f"**no clear difference** from as many {what} ({told})"
    if mean > 0:
        return f"our picks teach the model more than as many {what} ({told})"
    return f"**our picks teach the model less** than as many {what} ({told})"
