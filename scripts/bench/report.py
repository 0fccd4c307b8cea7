"""docs/benchmarks.md (the machine, then one table and one reading per benchmark) and the
same figures, machine-readable, in docs/benchmarks.json."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scripts.bench import gpu
from scripts.bench.machine import Machine
from scripts.bench.timing import Runs, Timing


@dataclass(frozen=True)
class BenchResult:
    title: str
    what: str
    sizes: str
    ours: str  # what our side runs
    theirs: str  # what the alternative runs
    timing: Timing
    agreement: str
    reading: str
    rows: list[tuple[str, str]] = field(default_factory=list)  # more table rows, after the ratios
    # Figures beyond the timing, for the JSON file: e.g. other ratios, peak memory, targets.
    metrics: dict[str, float | bool | str] = field(default_factory=dict)


Bench = Callable[[], BenchResult]


def write(
    dest: Path, results: list[BenchResult], machine: Machine, date: str, command: str
) -> None:
    """The report at `dest` (.md) and its figures beside it (.json)."""
    parts = [_header(machine, date, command)]
    parts += [_section(number, result, machine, date) for number, result in enumerate(results, 1)]
    parts += _gpu_check(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    figures = {
        "command": command,
        "date": date,
        "machine": asdict(machine),
        "results": [_figures(result) for result in results],
    }
    dest.with_suffix(".json").write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


def _gpu_check(dest: Path) -> list[str]:
    """The GPU check's section (scripts/gpu-check.sh), kept: this machine may have no GPU."""
    text = dest.read_text(encoding="utf-8") if dest.is_file() else ""
    if gpu.START not in text or gpu.END not in text:
        return []
    return [gpu.START + text.split(gpu.START, 1)[1].split(gpu.END, 1)[0] + gpu.END]


def seconds(value: float) -> str:
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def _header(machine: Machine, date: str, command: str) -> str:
    versions = ", ".join(f"{name} {v}" for name, v in machine.versions.items())
    return "\n".join(
        [
            "# Benchmarks",
            "",
            f"Written by `make bench` (`{command}`) on {date}; do not edit by hand, rerun it.",
            "Each benchmark runs pictrain and the obvious alternative in the same process on the "
            "same inputs: one warm-up run each, then N rounds in which the two take turns to go "
            "first; the time kept is the best of the N (`time.perf_counter`). "
            "**ratio = ours / alternative** of those wall times: below 1 ours is faster, above "
            "1 it is slower. The ratio of process CPU times (`time.process_time`, all threads) "
            "stands beside it: other processes on a shared machine disturb it much less, so "
            "where the two disagree the wall ratio is probably noise. "
            "Sizes are flags (`python -m scripts.bench --help`); the defaults fit a shared "
            "2-core machine in a few minutes, so small absolute times carry noise from other "
            "processes (see the load average).",
            "",
            "| machine | |",
            "|---|---|",
            f"| cores | {machine.cores} |",
            f"| CPU | {machine.cpu} |",
            f"| 1-min load average at start | {machine.load} |",
            f"| GPU | {machine.gpu} |",
            f"| Python | {machine.python} |",
            f"| libraries | {versions} |",
            f"| date | {date} |",
        ]
    )


def _section(number: int, result: BenchResult, machine: Machine, date: str) -> str:
    timing = result.timing
    runs = len(timing.ours.wall)
    rows = [
        ("what", result.what),
        ("sizes", result.sizes),
        (f"ours, best of {runs}", f"{seconds(timing.best_ours)}: {result.ours}"),
        (f"alternative, best of {runs}", f"{seconds(timing.best_theirs)}: {result.theirs}"),
        ("**ratio (ours / alternative)**", f"**{timing.ratio:.2f}**"),
        (
            "CPU-time ratio",
            f"{timing.cpu_ratio:.2f} (best process CPU time: ours "
            f"{seconds(min(timing.ours.cpu))}, alternative {seconds(min(timing.theirs.cpu))})",
        ),
        *result.rows,
        ("outputs agree", result.agreement),
        ("all runs, ours", _runs(timing.ours)),
        ("all runs, alternative", _runs(timing.theirs)),
        ("machine", machine.short),
        ("date", date),
    ]
    table = ["| | |", "|---|---|", *(f"| {key} | {_cell(value)} |" for key, value in rows)]
    return "\n".join([f"## {number}. {result.title}", "", *table, "", result.reading])


def _figures(result: BenchResult) -> dict[str, object]:
    timing = result.timing
    return {
        "title": result.title,
        "sizes": result.sizes,
        "ours": result.ours,
        "alternative": result.theirs,
        "ratio": round(timing.ratio, 4),
        "cpu_ratio": round(timing.cpu_ratio, 4),
        "ours_wall_s": timing.ours.wall,
        "alternative_wall_s": timing.theirs.wall,
        "ours_cpu_s": timing.ours.cpu,
        "alternative_cpu_s": timing.theirs.cpu,
        "agreement": result.agreement,
        **result.metrics,
    }


def _runs(runs: Runs) -> str:
    wall = ", ".join(seconds(t) for t in runs.wall)
    return f"wall {wall}; CPU {', '.join(seconds(t) for t in runs.cpu)}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
