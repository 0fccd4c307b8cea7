"""The backend protocol: the only thing that differs between a local run and a Picsellia run."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# The data layer owns what a split is, pictrain.starting what starting weights are (and the
# name of the file a user attaches), pictrain.exportformats the names exports are stored under;
# backends produce and store them.
from pictrain.data.splits import DatasetSplit
from pictrain.runstatus import JobStatus
from pictrain.starting import StartingWeights

# The names a run stores under, one place for all (docs/run-folder.md).
# Read back on a relaunch: the latest training checkpoint (ultralytics' last.pt) of an unfinished
# run, and the best weights so far.
CHECKPOINT_ARTIFACT = "last-checkpoint"
BEST_MODEL_ARTIFACT = "best-model"
# model-latest and the other exports: pictrain.exportformats; pretrained-weights: pictrain.starting.
CONFIG_ARTIFACT = "config"
MANIFEST_ARTIFACT = "manifest"
# Publishing an experiment as a model version keeps only the artifacts named model-latest,
# config and checkpoint-*-latest; continuous training then starts from that version's files.
# The best weights go under such a name too, or it would start from scratch.
PUBLISHED_WEIGHTS_ARTIFACT = "checkpoint-weights-latest"
# The job's console as plain text (the supervisor's job.log); the job view has it line by line.
JOB_LOG_ARTIFACT = "job-log"
# Logs: the experiment's parameters (read), the class order, why a run failed, the epochs whose
# metric was NaN or infinite (not sent: see `is_sendable`).
PARAMETERS_LOG = "parameters"
LABELMAP_LOG = "labelmap"
FAILURE_REASON_LOG = "failure reason"
NON_FINITE_LOG = "non-finite metrics"


log = logging.getLogger(__name__)


def is_sendable(name: str, value: float, step: int | None, warned: set[str]) -> bool:
    """False for NaN and infinities, which no backend sends (the SDK would send them as null,
    as Picsellia's own engines avoid); one warning per metric name in `warned`."""
    if math.isfinite(value):
        return True
    if name not in warned:
        warned.add(name)
        when = f" at epoch {step}" if step is not None else ""
        log.warning(
            "%s is %s%s: not sent (nor any later non-finite value of it)", name, value, when
        )
    return False


@dataclass(frozen=True)
class Detection:
    """One predicted box in pixels, top-left origin, with its label name and confidence."""

    x: int
    y: int
    w: int
    h: int
    label: str
    score: float


@dataclass(frozen=True)
class Polygon:
    """One predicted object outline, points in integer pixels."""

    points: list[list[int]]
    label: str
    score: float


@dataclass(frozen=True)
class Keypoints:
    """One predicted object's keypoints in the layout's order: integer pixels and a visibility,
    2 where the model gives the point at least even odds of being visible, else 0."""

    points: list[list[int]]  # [x, y, v] each
    label: str
    score: float


@dataclass(frozen=True)
class Classification:
    label: str
    score: float


@dataclass(frozen=True)
class Evaluation:
    """Predictions for one test image, keyed by the image's file name in the COCO export.
    One kind of shape per task: boxes (detect), polygons (segment), classes (classify) or
    keypoints (pose)."""

    file_name: str
    detections: list[Detection] = field(default_factory=list)
    polygons: list[Polygon] = field(default_factory=list)
    classifications: list[Classification] = field(default_factory=list)
    keypoints: list[Keypoints] = field(default_factory=list)


class Backend(Protocol):
    """Where parameters and data come from and where metrics, artifacts and status go.

    Writes may be asynchronous: `flush()` waits for them and raises PlatformError when one never
    went through; `close()` sends what is left and must be called once, last.
    """

    def parameters(self) -> dict[str, Any]: ...

    def datasets(self, dest: Path) -> dict[str, DatasetSplit]:
        """Fetch the attached splits under `dest`, keyed by canonical name (train/val/test)."""
        ...

    def base_weights(self, dest: Path) -> StartingWeights | None:
        """The weights the experiment brings, downloaded under `dest`: its own file (source
        `experiment`), else its base model version's (`model-version`); None when neither."""
        ...

    def champion_weights(self, dest: Path) -> tuple[Path, str] | None:
        """The base model version's weights (the deployed model, in continuous training),
        downloaded under `dest`, and what to call them; None when there are none."""
        ...

    def stored_artifact(self, name: str, dest: Path) -> Path | None:
        """A file an earlier attempt of this run stored (`last-checkpoint`, `best-model`),
        under `dest` if fetched, or None."""
        ...

    def log_series(self, name: str, step: int, value: float) -> None:
        """Append one point to a curve (at most one per epoch). The first point of a curve in a
        process at step s leaves the points of epochs 1..s-1 stored: a resumed run replaces what
        its previous attempt logged after the checkpoint it resumes from. A non-finite value is
        not sent: the curve skips that epoch (`is_sendable`)."""
        ...

    def log_value(self, name: str, value: float) -> None:
        """A final value; a non-finite one is not sent (`is_sendable`)."""
        ...

    def log_table(self, name: str, table: dict[str, Any]) -> None: ...

    def log_heatmap(self, name: str, heatmap: dict[str, Any]) -> None:
        """A matrix over categories, `{"categories": names, "values": rows}` (Picsellia's
        confusion-matrix view)."""
        ...

    def log_bar(self, name: str, bar: dict[str, list[Any]]) -> None:
        """A bar chart, `{"x": labels, "y": values}` (Picsellia's BAR log)."""
        ...

    def log_image(self, name: str, path: Path) -> None: ...

    def log_labelmap(self, labelmap: dict[str, str]) -> None: ...

    def store_artifact(self, name: str, path: Path) -> None: ...

    def store_checkpoint(self, path: Path, deadline: float | None = None) -> None:
        """Store `path` as the checkpoint, taking the file (removed once stored). Writes stay in
        order with the curves; a newer checkpoint may replace one not yet sent. With a
        `deadline` (time.monotonic(): the job is stopping), a backend may keep the recent
        checkpoint it stored rather than start an upload that would not finish in time."""
        ...

    def discard_checkpoint(self) -> None:
        """Training finished: a relaunch must not resume from a stored checkpoint."""
        ...

    def add_evaluations(self, evaluations: list[Evaluation]) -> None:
        """Every test image's predictions; the backend batches them as its platform needs."""
        ...

    def set_status(self, status: JobStatus, reason: str | None = None) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
