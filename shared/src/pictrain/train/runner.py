"""Train with ultralytics, in-process or in DDP workers, streaming epoch metrics to the backend."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pictrain import safeload
from pictrain.params import Parameters
from pictrain.platform.base import Backend
from pictrain.stopsignal import raise_if_stopped
from pictrain.train.checkpoint import Checkpoint, resume_arguments
from pictrain.train.devices import Devices
from pictrain.train.metrics import replay_missing
from pictrain.train.models import build_model, head_arguments, model_family
from pictrain.train.origin import TrainingOrigin, handed_to_trainers
from pictrain.train.relay import Relay
from pictrain.train.shm import fit_workers

log = logging.getLogger(__name__)

TRAINING_CURVES = "results"  # ultralytics' results.png: every curve, epoch by epoch


@dataclass(frozen=True)
class TrainResult:
    save_dir: Path
    best: Path

    @property
    def plots(self) -> dict[str, Path]:
        """ultralytics' plots by IMAGE log name: `results` (the train and val curves) as it is,
        the others under `val/`, for they show the final validation of the best weights on the
        val split, not the test split the `test/` values score."""
        return {
            plot.stem if plot.stem == TRAINING_CURVES else f"val/{plot.stem}": plot
            for plot in sorted(self.save_dir.glob("*.png"))
        }


def saved_weights(save_dir: Path) -> list[Path]:
    """Whatever weights a run left behind, best first: what a failed job still uploads."""
    weights = save_dir / "weights"
    return [p for p in (weights / "best.pt", weights / "last.pt") if p.is_file()]


def training_arguments(params: Parameters, devices: Devices) -> dict[str, Any]:
    """ultralytics' arguments for these parameters on these devices."""
    overrides = {**params.ultralytics_overrides(), "device": devices.device, "batch": devices.batch}
    if devices.distributed and overrides.get("cache") in (True, "ram"):
        # every DDP rank would hold its own copy of the images in RAM (ultralytics #22307)
        overrides["cache"] = "disk"
        log.info("cache: ram becomes disk under DDP (each GPU's process would hold its own copy)")
    overrides["workers"] = fit_workers(overrides["workers"], devices, overrides["imgsz"])
    return overrides


def train(
    task: str,
    origin: TrainingOrigin,
    weights: Path | None,
    data: Path,
    params: Parameters,
    devices: Devices,
    save_dir: Path,
    backend: Backend,
    resume: Checkpoint | None = None,
) -> TrainResult:
    """`origin` names the model (and the sha256 of `weights`, if any), recorded in every
    last.pt. `data` is a data.yaml (detect, segment) or a class-folder root (classify). With
    `resume`, training continues from that checkpoint (its parameters) instead of starting
    over."""
    from pictrain.train.trainers import attach, trainer_for  # imports ultralytics

    model_name = origin.model
    overrides = training_arguments(params, devices)
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
            **head_arguments(model),  # a resume keeps the checkpoint's
            **overrides,
        }
    log.info("training on %s", devices.describe())
    arguments = {"data": str(data), "plots": True, "trainer": trainer_for(model), **run_args}
    if devices.distributed:
        # Callbacks bound to the backend cannot reach the workers: rank 0 installs its own and
        # writes to the relay, which calls the backend here.
        with Relay(save_dir.parent / "relay", backend) as relay, handed_to_trainers(origin):
            model.train(**arguments)
        sent = relay.steps
    else:
        sent = attach(model, backend, save_dir.parent / "checkpoints").steps
        model.add_callback("on_train_batch_end", lambda _trainer: raise_if_stopped())
        with handed_to_trainers(origin):
            model.train(**arguments)
    first_step = resume.epochs_done + 1 if resume else 1
    replay_missing(save_dir / "results.csv", first_step, sent, backend)
    return TrainResult(save_dir=save_dir, best=_best_weights(save_dir))


def _resumed(
    model_name: str, resume: Checkpoint, overrides: dict[str, Any], save_dir: Path
) -> tuple[Any, dict[str, Any]]:
    """The checkpoint's model, what a resume may change, and the run folder (the checkpoint
    names the earlier attempt's, maybe elsewhere)."""
    log.info(
        "resuming from epoch %d of %d (checkpoint %s)",
        resume.epochs_done + 1,
        resume.args["epochs"],
        resume.path,
    )
    args = {"resume": True, "save_dir": str(save_dir.resolve()), **resume_arguments(overrides)}
    return safeload.model(model_family(model_name), resume.path), args


def _best_weights(save_dir: Path) -> Path:
    """best.pt, else last.pt: a run resumed in a fresh folder writes best.pt only when it beats
    the best fitness of the earlier attempt, whose best.pt stayed behind."""
    for path in saved_weights(save_dir):
        if path.name == "last.pt":
            log.warning("no epoch of this attempt beat the earlier best: keeping the last weights")
        return path
    raise RuntimeError(f"training ended without weights in {save_dir / 'weights'}")
