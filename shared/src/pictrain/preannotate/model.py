"""The model a pre-annotation runs (any export `OnnxModel` decodes: ONNX, OpenVINO, TorchScript)
and the thresholds it keeps predictions at: `confidence_threshold` when given, else the
operating point the training chose on val and wrote into the export, per class; else
ultralytics' default."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pictrain.evaluate.instance import Instance
from pictrain.evaluate.onnx_model import (
    DEFAULT_CONFIDENCE,
    OPERATING_POINT_KEY,
    OnnxModel,
    open_export,
)
from pictrain.evaluate.runtimes import metadata_value

log = logging.getLogger(__name__)

# The uncertainty signals look at predictions down to this score: a detection a little under
# the threshold is exactly the one a reviewer should see (docs/preannotate.md).
SCORING_FLOOR = 0.05


@dataclass(frozen=True)
class Thresholds:
    overall: float
    per_class: dict[str, float] = field(default_factory=dict)
    source: str = ""

    def of(self, name: str) -> float:
        return self.per_class.get(name, self.overall)

    @property
    def lowest(self) -> float:
        return min([self.overall, *self.per_class.values()])


def thresholds(model: OnnxModel, given: float | None) -> Thresholds:
    if given is not None:
        return Thresholds(given, {}, f"confidence_threshold {given}")
    point = operating_point(model.runtime.metadata, model.names)
    if point is not None:
        return point
    return Thresholds(
        DEFAULT_CONFIDENCE,
        {},
        f"{DEFAULT_CONFIDENCE}, ultralytics' default (the export carries no operating point)",
    )


def operating_point(metadata: Mapping[str, Any], names: list[str]) -> Thresholds | None:
    """The export's `operating_point` (JSON: `threshold`, `per_class` by label name,
    `chosen_by`), or None when it has none or one that makes no sense."""
    if OPERATING_POINT_KEY not in metadata:
        return None
    try:
        record = metadata_value(dict(metadata), OPERATING_POINT_KEY)
        overall = float(record["threshold"])
        per_class = {
            str(k): float(v) for k, v in dict(record.get("per_class") or {}).items() if k in names
        }
    except (ValueError, TypeError, KeyError, SyntaxError, json.JSONDecodeError):
        log.warning("the export's operating point is unreadable: not used")
        return None
    if not all(0 <= value <= 1 for value in [overall, *per_class.values()]):
        log.warning("the export's operating point is out of 0-1: not used")
        return None
    how = record.get("chosen_by") or "chosen at training"
    return Thresholds(overall, per_class, f"the model's operating point ({how}), per class")


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
        return cls(model, thresholds(model, confidence), scoring)

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
        kept = [i for i in candidates if i.score >= self.thresholds.of(self.model.names[i.cls])]
        return kept[:1] if self.task == "classify" else kept
