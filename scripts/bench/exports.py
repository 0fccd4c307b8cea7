"""Exports on the demo model: every CPU format and precision scored on the test split and timed
against the `.pt` weights on the same images, in one `pictrain run --local`.

The demo dataset and parameters (`pictrain demo`: 240 synthetic images at 160 px, 30 epochs)
train a model that finds the shapes, so the score differences mean something. The timed pair is
the deployable `model-latest.onnx` (onnxruntime) against the weights (ultralytics' network in
torch), each forwarding the same preprocessed test images one at a time; the run's own
deployment table (docs/exports.md) gives the other rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

from pictrain.cli import DEMO_IMAGE_SIZE, DEMO_PARAMETERS
from pictrain.evaluate.onnx_model import OnnxModel, read_image
from pictrain.evaluate.parity import WARN_ABOVE
from pictrain.exportformats import FORMATS, ExportSpec
from pictrain.synthetic import DATASET_MAKERS
from scripts.bench.report import Bench, BenchResult
from scripts.bench.timing import compare

TIMED_IMAGES = 20  # test images each side forwards per timed run


def cpu_exports() -> list[str]:
    """Every format and precision a CPU job makes."""
    return [
        str(ExportSpec(f.name, precision))
        for f in FORMATS.values()
        for precision, where in f.precisions.items()
        if where == "any"
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("6. exports (the demo model, every CPU format)")
    group.add_argument("--exports-task", default="detect", choices=sorted(DATASET_MAKERS))
    group.add_argument("--exports-images", type=int, default=240, help="demo images")
    group.add_argument(
        "--exports-epochs", type=int, default=DEMO_PARAMETERS["epochs"], help="epochs"
    )


def benchmarks(args: argparse.Namespace, work: Path) -> list[tuple[str, Bench]]:
    return [
        (
            "exports",
            partial(
                run,
                work,
                args.exports_task,
                args.exports_images,
                args.exports_epochs,
                args.repeats,
                args.seed,
            ),
        )
    ]


def run(work: Path, task: str, images: int, epochs: int, repeats: int, seed: int) -> BenchResult:
    run_dir = _train(work, task, images, epochs, seed)
    rows = json.loads((run_dir / "evaluation" / "exports.json").read_text())
    test = run_dir / "dataset" / ("test" if task == "classify" else "images/test")
    samples = sorted(p for p in test.rglob("*") if p.is_file())
    pixels = [read_image(p) for p in samples[:TIMED_IMAGES]]
    latest = OnnxModel.load(run_dir / "artifacts" / "model-latest.onnx")
    tensors = [latest.network_input(p) for p in pixels]

    def ours() -> Any:
        return lambda: [latest.runtime.run(t) for t in tensors]

    def theirs() -> Any:
        import torch

        from pictrain import safeload

        network = safeload.network(run_dir / "artifacts" / "best-model.pt").fuse().eval()
        inputs = [torch.from_numpy(t) for t in tensors]

        def forward() -> None:
            with torch.inference_mode():
                for tensor in inputs:
                    network(tensor)

        return forward

    timing = compare(ours, theirs, repeats).timing
    close = [r for r in rows if r["precision"] != "int8" and r["value"] is not None]
    int8 = [r for r in rows if r["precision"] == "int8"]
    failed = [r for r in rows if r["value"] is None]
    agrees = all(abs(r["delta"]) <= WARN_ABOVE for r in close) and not failed
    return BenchResult(
        title="Exports on the demo model",
        what=f"every CPU export ({', '.join(cpu_exports())}) scored on the test split and "
        "timed, one `pictrain run --local`; timed pair: the network on "
        f"{len(tensors)} preprocessed test images, one at a time",
        sizes=f"{task}, {images} synthetic images of {DEMO_IMAGE_SIZE} px, {epochs} epochs, "
        f"seed {seed}",
        ours="`model-latest.onnx` in onnxruntime (CPU)",
        theirs="the `.pt` weights: ultralytics' fused network in torch (CPU)",
        timing=timing,
        agreement=(
            f"{'yes' if agrees else '**no**'}: fp32 and fp16 exports within {WARN_ABOVE} of "
            f"the weights' {rows[0]['metric']} {rows[0]['value']:.4f}; INT8: "
            + ", ".join(f"{r['format']} {_signed(r['delta'])}" for r in int8)
            + (f"; failed: {', '.join(r['format'] for r in failed)}" if failed else "")
        ),
        reading=_reading(rows),
        rows=[(f"{r['format']} {r['precision']}", _row(r)) for r in rows],
        metrics={
            f"{r['format']}_{r['precision']}_{key}": r[key]
            for r in rows
            for key in ("value", "delta", "latency_ms", "images_per_s", "size_bytes")
            if r[key] is not None
        },
    )


def _train(work: Path, task: str, images: int, epochs: int, seed: int) -> Path:
    data = work / "data"
    if not (data / "train" / "annotations.json").is_file():
        DATASET_MAKERS[task](data, n_images=images, image_size=DEMO_IMAGE_SIZE, seed=seed)
    parameters = {**DEMO_PARAMETERS, "epochs": epochs, "seed": seed}
    parameters |= {"device": "cpu", "export_formats": cpu_exports()}
    (data / "parameters.json").write_text(json.dumps(parameters))
    command = [sys.executable, "-m", "pictrain", "run", "--local", str(data), "--task", task]
    command += ["--name", "exports", "--runs-dir", str(work / "runs")]
    subprocess.run(command, check=True, capture_output=True)
    return work / "runs" / "exports"


def _row(row: dict[str, Any]) -> str:
    if row["value"] is None:
        return f"failed: {row['note']}"
    return (
        f"{row['metric']} {row['value']:.4f} ({_signed(row['delta'])}), "
        f"{row['latency_ms']:.2f} ms, {row['images_per_s']:.0f} images/s, "
        f"{row['size_bytes'] / 1e6:.1f} MB"
    )


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4f}"


def _reading(rows: list[dict[str, Any]]) -> str:
    timed = [r for r in rows if r["latency_ms"] is not None]
    fastest = min(timed, key=lambda r: r["latency_ms"])
    smallest = min(timed, key=lambda r: r["size_bytes"])
    return (
        "**Reading.** Each row is the run's own deployment table: the export's test metric "
        "through the weights' evaluation path, its difference to the weights', the network's "
        "median latency on one test image (batch 1, warm) and its size. On this machine the "
        f"fastest is {fastest['format']} {fastest['precision']} "
        f"({fastest['latency_ms']:.2f} ms) and the smallest {smallest['format']} "
        f"{smallest['precision']} ({smallest['size_bytes'] / 1e6:.1f} MB)."
    )
