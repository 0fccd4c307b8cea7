"""Train with ultralytics in-process, streaming epoch metrics to the backend."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pictrain.params import Parameters
from pictrain.platform.base import Backend
from pictrain.train import amp
from pictrain.train.metrics import EpochMetrics
from pictrain.train.models import build_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    save_dir: Path
    best: Path

    @property
    def plots(self) -> list[Path]:
        return sorted(self.save_dir.glob("*.png"))


def checkpoints(save_dir: Path) -> list[Path]:
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
) -> TrainResult:
    """`data` is a data.yaml (detect, segment) or a class-folder root (classify)."""
    model = build_model(task, model_name, weights)
    amp.install()
    EpochMetrics(backend).attach(model)
    overrides = params.ultralytics_overrides()
    if not params.device:
        overrides.pop("device")
    log.info(
        "training %s from %s on %s for %d epochs",
        model_name,
        weights.name if weights else "scratch",
        data,
        params.epochs,
    )
    model.train(
        data=str(data),
        project=str(save_dir.parent.resolve()),  # ultralytics nests a relative project
        name=save_dir.name,
        exist_ok=True,
        plots=True,
        **overrides,
    )
    best = save_dir / "weights" / "best.pt"
    if not best.is_file():
        raise RuntimeError(f"training ended without {best}")
    return TrainResult(save_dir=save_dir, best=best)
