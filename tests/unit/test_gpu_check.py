"""The GPU check is ready to run where a GPU is (none here): its script parses, its section of
docs/benchmarks.md is replaced by a rerun and kept by `make bench`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scripts.bench import gpu, report
from scripts.bench.machine import Machine

ROOT = Path(__file__).parents[2]


def test_the_script_parses_and_its_module_answers() -> None:
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / "gpu-check.sh")], check=True)
    help_text = subprocess.run(
        [sys.executable, "-m", "scripts.bench.gpu", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--models" in help_text and "--device" in help_text


def test_its_section_is_replaced_by_a_rerun_and_kept_by_make_bench(tmp_path: Path) -> None:
    dest = tmp_path / "benchmarks.md"
    dest.write_text("# Benchmarks\n\nold figures\n")
    gpu.write(dest, f"{gpu.START}\nfirst\n{gpu.END}")
    gpu.write(dest, f"{gpu.START}\nsecond\n{gpu.END}")
    text = dest.read_text()
    assert "first" not in text and text.count(gpu.START) == 1 and "old figures" in text

    machine = Machine(2, "cpu", "0.1", "no GPU", "3.11", {"torch": "x", "ultralytics": "y"})
    report.write(dest, [], machine, "today", "python -m scripts.bench")
    text = dest.read_text()
    assert "old figures" not in text  # make bench rewrites its own part
    assert f"{gpu.START}\nsecond\n{gpu.END}" in text


def test_the_exports_table_shows_a_failed_row_with_its_reason() -> None:
    row = dict.fromkeys(("value", "delta", "latency_ms", "images_per_s", "size_bytes"))
    row |= {"format": "engine", "precision": "int8", "metric": "m", "note": "ImportError: x"}
    assert "| engine | int8 | m | - | - | - | - | - | ImportError: x |" in gpu._exports_table([row])
