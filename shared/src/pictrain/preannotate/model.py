"""The model a pre-annotation runs (any export `OnnxModel` decodes: ONNX, OpenVINO, TorchScript)
and the thresholds it keeps predictions at: `confidence_threshold` when given, else the
operating point the training chose on val and wrote into the export, per class; else
ultralytics' default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pictrain.evaluate.instance import Instance
from pictrain.evaluate.onnx_model import OnnxModel, open_export
from pictrain.evaluate.operating_point import Thresholds, to_keep

# The uncertainty signals look at predictions down to this score: a detection a little under
# the threshold is exactly the one a reviewer should see (docs/preannotate.md).
SCORING_FLOOR = 0.05


@dataclass(frozen=True)
class Predictor:
    """What the model sees in one image: every candidate down to the scoring floor, and the
    ones kept at the thresholds."""

    model: OnnxModel
    thresholds: Thresholds
    scoring: bool = True  # False: no candidate under the thresholds is wanted

    @classmethod
    def load(cls, path: Path, what: str, confidence: float | None, scoring: bool) -> Predictor:
        model = open_export(path, what)
        kept = to_keep(confidence, "confidence_threshold", model.operating_point, model.names)
        return cls(model, kept, scoring)

    @property
    def task(self) -> str:
        return self.model.task

    @property
    def names(self) -> list[str]:
        return self.model.names

    def candidates(self, pixels: np.ndarray) -> list[Instance]:
        floor = min(SCORING_FLOOR, self.thresholds.lowest) if self.scoring else None
        return self.model.predict(pixels, conf=self.thresholds.lowest if floor is None else floor)

    def kept(self, candidates: list[Instance]) -> list[Instance]:
        """At each class's threshold; classification keeps its top class only."""
        kept = [i for i in candidates if i.score >= self.thresholds.of(i.cls)]
        return kept[:1] if self.task == "classify" else kept
