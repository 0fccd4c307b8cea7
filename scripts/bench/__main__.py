"""Run every benchmark and write docs/benchmarks.md: `python -m scripts.bench [--help]`."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pictrain import offline
from scripts.bench import coldstart, convert, evaluate, machine, report, train


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"), help="report")
    parser.add_argument("--repeats", type=int, default=3, help="N of best-of-N, every benchmark")
    parser.add_argument("--seed", type=int, default=0, help="data and training seed")
    group = parser.add_argument_group("1. COCO -> YOLO conversion")
    group.add_argument("--convert-images", type=int, default=2000, help="JPEG files")
    group.add_argument("--convert-image-size", type=int, default=64, help="pixels")
    group.add_argument(
        "--convert-extra-boxes", type=int, default=20, help="random boxes added per image"
    )
    group = parser.add_argument_group("2. COCO evaluation")
    group.add_argument("--eval-images", type=int, default=5000, help="test images")
    group.add_argument("--eval-classes", type=int, default=10, help="categories")
    group.add_argument("--eval-boxes", type=int, default=20, help="mean boxes per image")
    group = parser.add_argument_group("3. training overhead")
    group.add_argument("--train-images", type=int, default=64, help="train = val images")
    group.add_argument("--train-image-size", type=int, default=64, help="imgsz")
    group.add_argument("--train-epochs", type=int, default=3, help="epochs")
    group.add_argument("--train-batch", type=int, default=16, help="batch size")
    group.add_argument("--model", default="yolov8n", help="ultralytics architecture")
    group.add_argument("--device", default="cpu", help="'' = GPU when present, else CPU")
    group = parser.add_argument_group("4. cold start (fresh processes, CPU)")
    group.add_argument("--cold-images", type=int, default=64, help="images on disk")
    group.add_argument("--cold-image-size", type=int, default=64, help="pixels and imgsz")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args(sys.argv[1:])
    command = shlex.join(["python", "-m", "scripts.bench", *sys.argv[1:]])
    with tempfile.TemporaryDirectory(prefix="pictrain-bench-") as tmp:
        work = Path(tmp)
        _offline(work / "yolo-config")
        facts = machine.describe()
        date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        results = []
        for name, bench in _benchmarks(args, work):
            print(f"bench: {name}...", file=sys.stderr, flush=True)
            result = bench()
            timing = result.timing
            print(
                f"bench: {name}: ours {report.seconds(timing.best_ours)}, alternative "
                f"{report.seconds(timing.best_theirs)}, ratio {timing.ratio:.2f}; "
                f"agree: {result.agreement}",
                file=sys.stderr,
                flush=True,
            )
            results.append(result)
    report.write(args.out, results, facts, date, command)
    print(f"bench: wrote {args.out}", file=sys.stderr)


def _offline(config_dir: Path) -> None:
    """ultralytics offline, quiet, with settings in a throw-away folder; before importing it."""
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ.setdefault("YOLO_VERBOSE", "False")
    offline.configure_environment()
    offline.install_assets()


def _benchmarks(args: argparse.Namespace, work: Path) -> list[tuple[str, report.Bench]]:
    convert_sizes = convert.ConvertSizes(
        args.convert_images, args.convert_image_size, args.convert_extra_boxes
    )
    eval_sizes = evaluate.EvalSizes(args.eval_images, args.eval_classes, args.eval_boxes)
    train_sizes = train.TrainSizes(
        args.train_images,
        args.train_image_size,
        args.train_epochs,
        args.train_batch,
        args.model,
        args.device,
    )
    cold_sizes = coldstart.ColdStartSizes(
        args.cold_images, args.cold_image_size, args.train_batch, args.model
    )
    return [
        (
            "conversion",
            lambda: convert.run(work / "convert", convert_sizes, args.repeats, args.seed),
        ),
        ("evaluation", lambda: evaluate.run(eval_sizes, args.repeats, args.seed)),
        ("training", lambda: train.run(work / "train", train_sizes, args.repeats, args.seed)),
        (
            "cold start",
            lambda: coldstart.first_batch(work / "cold", cold_sizes, args.repeats, args.seed),
        ),
        ("pictrain --help", lambda: coldstart.cli_help(args.repeats)),
    ]


if __name__ == "__main__":
    main()
