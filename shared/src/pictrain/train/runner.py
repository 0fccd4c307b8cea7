"""Train with ultralytics in-process, streaming epoch metrics to the backend."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pictrain.params import Parameters
from pictrain.platform.base import Backend
from pictrain.train import amp
from pictrain.train.checkpoint import Checkpoint, PeriodicCheckpoint, interval_seconds
from pictrain.train.metrics import EpochMetrics, replay_missing
from pictrain.train.models import build_model, model_family

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    save_dir: Path
    best: Path

    @property
    def plots(self) -> list[Path]:
        return sorted(self.save_dir.glob("*.png"))


def saved_weights(save_dir: Path) -> list[Path]:
    """Whatever weights a run left behind, best first: what a failed job still uploads."""
    weights = save_dir / "weights"
    return [p for p in (weights / "best.pt", weights / "last.pt") if p.is_file()]


def train(
    task: str,
    model_name: str,
    weights: Path | None,
    data: Path,
    params: Parameters,
    save_dir: Path,
    backend: Backend,
    resume: Checkpoint | None = None,
) -> TrainResult:
    """`data` is a data.yaml (detect, segment) or a class-folder root (classify). With `resume`,
    training continues from that checkpoint (its parameters) instead of starting over."""
    overrides = params.ultralytics_overrides()
    if not params.device:
        overrides.pop("device")
    if resume:
        model, run_args = _resumed(model_name, resume, overrides, save_dir)
    else:
        model = build_model(task, model_name, weights)
        log.info(
            "training %s from %s on %s for %d epochs",
            model_name,
            weights.name if weights else "scratch",
            data,
            params.epochs,
        )
        run_args = {
            "project": str(save_dir.parent.resolve()),  # ultralytics nests a relative project
            "name": save_dir.name,
            "exist_ok": True,
            **overrides,
        }
    amp.install()
    metrics = EpochMetrics(backend)
    metrics.attach(model)  # before the checkpoint callback: points first, then the checkpoint
    PeriodicCheckpoint(backend, save_dir.parent / "checkpoints", interval_seconds()).attach(model)
    model.train(data=str(data), plots=True, **run_args)
    first_step = resume.epochs_done + 1 if resume else 1
    replay_missing(save_dir / "results.csv", first_step, metrics.steps, backend)
    return TrainResult(save_dir=save_dir, best=_best_weights(save_dir))


def _resumed(
    model_name: str, resume: Checkpoint, overrides: dict[str, Any], save_dir: Path
) -> tuple[Any, dict[str, Any]]:
    """The checkpoint's model and the few arguments a resume may change: what differs between
    machines, and the run folder (the checkpoint names the earlier attempt's, maybe elsewhere)."""
    log.info(
        "resuming from epoch %d of %d (checkpoint %s)",
        resume.epochs_done + 1,
        resume.args["epochs"],
        resume.path,
    )
    machine = {k: overrides[k] for k in ("device", "workers", "batch") if k in overrides}
    args = {"resume": True, "save_dir": str(save_dir.resolve()), **machine}
    return model_family(model_name)(str(resume.path)), args


def _best_weights(save_dir: Path) -> Path:
    """best.pt, else last.pt: a run resumed in a fresh folder writes best.pt only when it beats
    the best fitness of the earlier attempt, whose best.pt stayed behind."""
    for path in saved_weights(save_dir):
        if path.name == "last.pt":
            log.warning("no epoch of this attempt beat the earlier best: keeping the last weights")
        return path
    raise RuntimeError(f"training ended without weights in {save_dir / 'weights'}")
