"""The deploy-parity gate: the exported ONNX model must score as the weights it came from.

Both are scored on the test split through the same path (`evaluate_test_split`); the gate reads
one metric per task. A difference above `WARN_ABOVE` is a warning, above `FAIL_ABOVE` the
export is not what was trained (an export or runtime defect) and the job fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pictrain.config import task_spec
from pictrain.data.prepare import PreparedDataset
from pictrain.errors import DeployParityError
from pictrain.evaluate.operating_point import Thresholds
from pictrain.evaluate.run import evaluate_test_split, export_predictor

WARN_ABOVE = 0.01
FAIL_ABOVE = 0.05
TABLE = "test/deploy-parity"

Verdict = Literal["ok", "warning", "failed"]


@dataclass(frozen=True)
class Parity:
    task: str
    weights: float  # the metric of the .pt weights
    onnx: float  # the same metric of the ONNX export

    @property
    def metric(self) -> str:
        """What the gate compares (`TaskSpec.gate_metric`): the box mAP for detection, the
        mask mAP for segmentation..."""
        return task_spec(self.task).gate_metric

    @property
    def difference(self) -> float:
        """ONNX minus weights: negative when the export scores lower."""
        return self.onnx - self.weights

    @property
    def verdict(self) -> Verdict:
        gap = abs(self.difference)
        return "failed" if gap > FAIL_ABOVE else "warning" if gap > WARN_ABOVE else "ok"

    @property
    def values(self) -> dict[str, float]:
        """The values to log, without the `test/` prefix: the metric without its suffix."""
        name = self.metric.split("(")[0]
        return {f"onnx-{name}": self.onnx, f"onnx-{name}-difference": self.difference}

    @property
    def message(self) -> str:
        metric = self.metric
        limit = FAIL_ABOVE if self.verdict == "failed" else WARN_ABOVE
        said = f"test {metric}: ONNX {self.onnx:.4f}, weights {self.weights:.4f}"
        if self.verdict == "ok":
            return f"the ONNX export scores as the weights ({said})"
        return f"the ONNX export does not score as the weights ({said}, over {limit})"

    @property
    def table(self) -> dict[str, Any]:
        return {
            "columns": ["weights", "onnx", "difference", "verdict"],
            "rows": [self.metric],
            "data": [[self.weights, self.onnx, self.difference, self.message]],
        }

    def enforce(self) -> None:
        """Raise when the export must not be deployed; the caller logs the rest."""
        if self.verdict == "failed":
            raise DeployParityError(self.message)


def check_export(
    task: str,
    onnx: Path,
    dataset: PreparedDataset,
    weights_values: dict[str, float],
    thresholds: Thresholds,
    out_dir: Path,
) -> Parity | None:
    """Score `onnx` on the test split as the weights were scored (`weights_values`, from
    `evaluate_test_split`), writing its evaluation files under `out_dir`. None when the metric
    is undefined (COCO's -1: a test split without ground truth)."""
    exported = evaluate_test_split(task, export_predictor(onnx), dataset, thresholds, out_dir)
    metric = task_spec(task).gate_metric
    if metric not in weights_values or metric not in exported.values:
        return None
    return Parity(task, weights_values[metric], exported.values[metric])
