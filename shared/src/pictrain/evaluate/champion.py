"""Champion against challenger: when the experiment's base model version holds trained weights
(the deployed model, in continuous training), they are scored on this run's test split by the
same path as the run's own weights, and both are logged. `pictrain model publish` and `pictrain
deploy` read the verdict (TABLE `champion-vs-challenger`) and refuse a challenger scoring more
than `champion_tolerance` below the champion, unless `--force`.

The comparison is fair only on the same classes: a champion of another task, or whose classes
(names, in training order) differ from the run's, is not scored; the table and
`evaluation/champion.json` say why, and nothing is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pictrain.checksums import sha256
from pictrain.config import task_spec
from pictrain.data.prepare import PreparedDataset
from pictrain.evaluate.operating_point import Thresholds
from pictrain.evaluate.run import evaluate_test_split, weights_predictor
from pictrain.train.checkpoint import read_checkpoint

log = logging.getLogger(__name__)

TABLE = "champion-vs-challenger"
COLUMNS = ["champion", "challenger", "difference", "tolerance", "verdict"]
WORSE = "worse"  # the verdict publish and deploy refuse


@dataclass(frozen=True)
class Comparison:
    task: str
    file: str  # the champion's file, as the base model version names it
    sha256: str
    tolerance: float
    challenger: dict[str, float]
    champion: dict[str, float] = field(default_factory=dict)
    not_compared: str | None = None  # why the champion was not scored

    @property
    def metric(self) -> str:
        return task_spec(self.task).gate_metric

    @property
    def difference(self) -> float | None:
        """Challenger minus champion on the gate metric: negative when the new one is worse."""
        if self.not_compared or self.metric not in self.champion:
            return None
        return self.challenger[self.metric] - self.champion[self.metric]

    @property
    def verdict(self) -> str:
        difference = self.difference
        if difference is None:
            return f"not compared: {self.not_compared or 'nothing to score on test'}"
        return WORSE if difference < -self.tolerance else "not worse"

    @property
    def message(self) -> str:
        if self.difference is None:
            return f"champion ({self.file}) {self.verdict}"
        return (
            f"test {self.metric}: challenger {self.challenger[self.metric]:.4f}, champion "
            f"{self.champion[self.metric]:.4f} ({self.file}): {self.verdict} (tolerance "
            f"{self.tolerance})"
        )

    @property
    def values(self) -> dict[str, float]:
        """Logged under `test/`: each champion value beside the run's own."""
        return {f"champion-{name}": value for name, value in self.champion.items()}

    @property
    def table(self) -> dict[str, Any]:
        names = [self.metric, *(n for n in self.champion if n != self.metric)]
        rows = [n for n in names if n in self.challenger]
        data = [
            [
                self.champion.get(n),
                self.challenger[n],
                self.challenger[n] - self.champion[n] if n in self.champion else None,
                self.tolerance if n == self.metric else None,
                self.verdict if n == self.metric else "",
            ]
            for n in rows
        ]
        return {"columns": COLUMNS, "rows": rows, "data": data}

    def record(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "metric": self.metric,
            "champion": self.champion,
            "challenger": self.challenger,
            "difference": self.difference,
            "tolerance": self.tolerance,
            "verdict": self.verdict,
        }


def compare(
    task: str,
    champion: Path,
    name: str,
    dataset: PreparedDataset,
    challenger: dict[str, float],
    tolerance: float,
    image_size: int,
    device: str,
    out_dir: Path,
) -> Comparison:
    """Score `champion` (a weights file named `name` on the platform) on the test split;
    `challenger`: the run's own test values, from `evaluate_test_split`."""
    found = Comparison(task, name, sha256(champion), tolerance, challenger)
    checkpoint = read_checkpoint(champion, "champion")
    if checkpoint is None:
        return _skipped(found, "its file is not an ultralytics checkpoint")
    their_task = checkpoint.args.get("task")
    if their_task and their_task != task:
        return _skipped(found, f"it was trained for {their_task}, not {task}")
    if checkpoint.names != dataset.names:
        return _skipped(
            found, f"its classes {_few(checkpoint.names)} are not this run's {_few(dataset.names)}"
        )
    scored = evaluate_test_split(
        task,
        weights_predictor(champion, image_size, device),
        dataset,
        Thresholds.fixed(1.0, dataset.names, "not sent"),
        out_dir,
    )
    return Comparison(task, name, found.sha256, tolerance, challenger, scored.values)


def _few(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return f"[{shown}]" if len(names) <= 5 else f"[{shown}, ... {len(names)} classes]"


def _skipped(found: Comparison, why: str) -> Comparison:
    log.warning("champion %s not compared: %s", found.file, why)
    return Comparison(
        found.task, found.file, found.sha256, found.tolerance, found.challenger, {}, why
    )


def refusal(table: Mapping[str, Any]) -> str | None:
    """Why a logged `champion-vs-challenger` table refuses publishing or deploying, or None."""
    rows, data = list(table.get("rows") or []), list(table.get("data") or [])
    for name, row in zip(rows, data, strict=False):
        verdict = row[COLUMNS.index("verdict")] if len(row) == len(COLUMNS) else ""
        if verdict == WORSE:
            champion, challenger, difference, tolerance = row[:4]
            return (
                f"it scores test {name} {challenger:.4f}, below the champion's {champion:.4f} "
                f"(the base model version's weights) by {-difference:.4f}, more than the "
                f"tolerance {tolerance}"
            )
    return None
