"""The deployment table: every export of a run scored on the test split as the weights were, and
timed where it runs, one row per format and precision, the weights' own row first.

Score: the same `evaluate_test_split` as the weights, read at the parity gate's metric; delta is
the export's minus the weights'. Latency: the network alone on one preprocessed test image
(batch 1, the exports' static shape), after `WARMUP_RUNS`, median of `TIMED_RUNS`; pre- and
post-processing are the same code for every row, so they are left out. images_per_s: those
runs back to back, one image each. A format that cannot be made or run fails its own row, with
the reason, never the job.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from pictrain import safeload
from pictrain.config import task_spec
from pictrain.data.prepare import PreparedDataset
from pictrain.evaluate.classification import read_class_split
from pictrain.evaluate.onnx_model import OnnxModel, read_image
from pictrain.evaluate.operating_point import Thresholds
from pictrain.evaluate.parity import WARN_ABOVE
from pictrain.evaluate.run import evaluate_test_split, export_predictor
from pictrain.exportformats import LATEST, ExportSpec
from pictrain.exports.calibration import calibration_data
from pictrain.exports.export import export
from pictrain.stopsignal import raise_if_stopped

log = logging.getLogger(__name__)

TABLE = "deployment"
EXPORTS_FILE = "exports.json"  # in evaluation/
WEIGHTS_FORMAT = "pt"
WEIGHTS = ExportSpec(WEIGHTS_FORMAT)  # the trained weights, as a row of the table
WARMUP_RUNS = 5
TIMED_RUNS = 50


class ExportRow(BaseModel):
    """One row of `evaluation/exports.json` and of the `deployment` table."""

    format: str
    precision: str
    file: str | None
    metric: str
    value: float | None
    delta: float | None
    latency_ms: float | None
    images_per_s: float | None
    size_bytes: int | None
    note: str | None = None  # why the row failed, or its warning


def table(rows: list[ExportRow]) -> dict[str, Any]:
    """The TABLE log: one row per export, named `<format> <precision>`."""
    columns = [n for n in ExportRow.model_fields if n not in ("format", "precision")]
    return {
        "columns": columns,
        "rows": [f"{row.format} {row.precision}" for row in rows],
        "data": [[getattr(row, name) for name in columns] for row in rows],
    }


def write_rows(rows: list[ExportRow], dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(
        "[\n" + ",\n".join(row.model_dump_json() for row in rows) + "\n]\n", encoding="utf-8"
    )
    return dest


def weights_row(
    task: str, weights: Path, value: float | None, device: str, network_input: np.ndarray
) -> ExportRow:
    """The trained `.pt` as ultralytics runs it (fused, eval mode) on the job's device, fed
    what the exports are fed."""
    import torch

    network = safeload.network(weights).fuse().eval()
    target = torch.device(device if device in ("cpu", "mps") else f"cuda:{device}")
    network.to(target)
    tensor = torch.from_numpy(network_input).to(target)

    def forward() -> None:
        with torch.inference_mode():
            network(tensor)
        if target.type == "cuda":
            torch.cuda.synchronize(target)
        elif target.type == "mps":
            torch.mps.synchronize()

    latency, rate = measure(forward)
    return ExportRow(
        format=WEIGHTS_FORMAT,
        precision="fp32",
        file=weights.name,
        metric=task_spec(task).gate_metric,
        value=value,
        delta=0.0 if value is not None else None,
        latency_ms=latency,
        images_per_s=rate,
        size_bytes=weights.stat().st_size,
    )


def export_row(
    spec: ExportSpec,
    path: Path,
    task: str,
    weights_value: float | None,
    value: float | None,
    sample: np.ndarray,
) -> ExportRow:
    """A made export, scored (`value`) and timed here on the `sample` image's pixels."""
    model = OnnxModel.load(path)
    tensor = model.network_input(sample)
    latency, rate = measure(lambda: model.runtime.run(tensor))
    delta = value - weights_value if value is not None and weights_value is not None else None
    note = None
    if delta is not None and abs(delta) > WARN_ABOVE:
        note = f"scores {delta:+.4f} from the weights (over {WARN_ABOVE})"
    return ExportRow(
        format=spec.format,
        precision=spec.precision,
        file=path.name,
        metric=task_spec(task).gate_metric,
        value=value,
        delta=delta,
        latency_ms=latency,
        images_per_s=rate,
        size_bytes=path.stat().st_size,
        note=note,
    )


def failed_row(spec: ExportSpec, task: str, reason: str) -> ExportRow:
    return ExportRow(
        format=spec.format,
        precision=spec.precision,
        file=None,
        metric=task_spec(task).gate_metric,
        value=None,
        delta=None,
        latency_ms=None,
        images_per_s=None,
        size_bytes=None,
        note=reason,
    )


def score(
    task: str, path: Path, dataset: PreparedDataset, thresholds: Thresholds, out_dir: Path
) -> float | None:
    """The export's test metric, through the weights' own evaluation path; None when the
    test split has nothing to measure (COCO's -1)."""
    values = evaluate_test_split(task, export_predictor(path), dataset, thresholds, out_dir).values
    return values.get(task_spec(task).gate_metric)


def measure(call: Callable[[], object]) -> tuple[float, float]:
    """(median latency in ms, images per second) of `call` on one image, warm."""
    for _ in range(WARMUP_RUNS):
        call()
    times = []
    for _ in range(TIMED_RUNS):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, len(times) / sum(times)


def sample_image(task: str, dataset: PreparedDataset) -> Path:
    """The test image every row is timed on (the first, in file order)."""
    if task == "classify":
        return read_class_split(dataset.root / "test")[0][0]
    return sorted(p for p in dataset.images_dir("test").iterdir() if p.is_file())[0]


@dataclass(frozen=True)
class Exports:
    """What every row needs from the job; `store(artifact, path)` stores an export."""

    task: str
    weights: Path
    dataset: PreparedDataset
    labelmap: dict[str, str]
    image_size: int
    device: str
    thresholds: Thresholds  # the operating point: in each export's metadata
    seed: int
    calibration_images: int
    export_dir: Path  # the files stored
    eval_dir: Path  # each export's evaluation files, in a folder per artifact
    store: Callable[[str, Path], None]

    def rows(
        self,
        specs: list[ExportSpec],
        latest: Path,
        latest_value: float | None,
        weights_value: float | None,
    ) -> list[ExportRow]:
        """The weights' row, model-latest's (already stored and scored by the parity gate),
        then each other export: made, stored, scored, timed, or failed with its reason."""
        pixels = read_image(sample_image(self.task, self.dataset))

        def weights() -> ExportRow:
            network_input = OnnxModel.load(latest).network_input(pixels)
            return weights_row(self.task, self.weights, weights_value, self.device, network_input)

        rows = [
            self._guarded(WEIGHTS, weights),
            self._guarded(
                LATEST,
                lambda: export_row(LATEST, latest, self.task, weights_value, latest_value, pixels),
            ),
        ]
        for spec in specs:
            if spec == LATEST:
                continue
            raise_if_stopped()
            rows.append(self._guarded(spec, lambda s=spec: self._row(s, weights_value, pixels)))
        return rows

    def _guarded(self, spec: ExportSpec, make: Callable[[], ExportRow]) -> ExportRow:
        """One row's failure is that row's, never the job's: the weights and model-latest are
        stored by then."""
        try:
            return make()
        except Exception as exc:
            reason = f"{type(exc).__name__}: {_first_line(exc)}"
            log.warning("export %s failed: %s", spec, reason)
            return failed_row(spec, self.task, reason)

    def _row(self, spec: ExportSpec, weights_value: float | None, pixels: np.ndarray) -> ExportRow:
        calibration = self._calibration() if spec.precision == "int8" else None
        path = export(
            self.weights,
            spec,
            self.image_size,
            self.export_dir,
            self.task,
            self.labelmap,
            calibration,
            self.device,
            self.dataset.keypoints.skeleton() if self.dataset.keypoints else None,
            self.thresholds.record(),
        )
        self.store(spec.artifact, path)
        value = score(self.task, path, self.dataset, self.thresholds, self.eval_dir / spec.artifact)
        row = export_row(spec, path, self.task, weights_value, value, pixels)
        if row.note:
            log.warning("%s %s", spec, row.note)
        return row

    def _calibration(self) -> Path:
        data, count = calibration_data(
            self.task,
            self.dataset,
            self.calibration_images,
            self.seed,
            self.export_dir / "calibration",
        )
        log.info("INT8 calibration on %d train images", count)
        return data


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no message"
