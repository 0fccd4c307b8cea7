"""Run every benchmark, write docs/benchmarks.md and .json: `python -m scripts.bench [--help]`."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pictrain import offline
from scripts.bench import (
    coldstart,
    convert,
    evaluate,
    exports,
    finetune,
    machine,
    obb,
    platform_calls,
    preannotate,
    report,
    train,
)

# Each suite adds its size flags (`add_arguments(parser)`) and says what to run
# (`benchmarks(args, work)` -> [(name, call returning a BenchResult)]). A new suite is a
# module with those two functions, listed here.
SUITES = (convert, evaluate, obb, train, coldstart, platform_calls, exports, finetune, preannotate)
TMPFS = Path("/dev/shm")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--out", type=Path, default=Path("docs/benchmarks.md"), help="report; figures in .json"
    )
    parser.add_argument("--repeats", type=int, default=3, help="N of best-of-N, every benchmark")
    parser.add_argument("--seed", type=int, default=0, help="data and training seed")
    parser.add_argument(
        "--large", action="store_true", help="add the target sizes (1M annotations: minutes)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[_name(s) for s in SUITES],
        metavar="SUITE",
        help=f"run only these suites: {', '.join(_name(s) for s in SUITES)}",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=TMPFS if TMPFS.is_dir() else None,
        help="where inputs and outputs go (tmpfs keeps disk speed out of the figures)",
    )
    for suite in SUITES:
        suite.add_arguments(parser)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args(sys.argv[1:])
    command = shlex.join(["python", "-m", "scripts.bench", *sys.argv[1:]])
    with tempfile.TemporaryDirectory(prefix="pictrain-bench-", dir=args.work) as tmp:
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
    print(f"bench: wrote {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)


def _offline(config_dir: Path) -> None:
    """ultralytics offline, quiet, with settings in a throw-away folder; before importing it."""
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ.setdefault("YOLO_VERBOSE", "False")
    offline.configure_environment()
    offline.install_assets()


def _benchmarks(args: argparse.Namespace, work: Path) -> list[tuple[str, report.Bench]]:
    chosen = [s for s in SUITES if not args.only or _name(s) in args.only]
    return [item for suite in chosen for item in suite.benchmarks(args, work / suite.__name__)]


def _name(suite: object) -> str:
    return suite.__name__.rsplit(".", 1)[-1]


if __name__ == "__main__":
    main()
