"""Checkpoints for preemption: stored while training, read back at start to resume."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pictrain import safeload
from pictrain.envvars import CHECKPOINT_MINUTES
from pictrain.train import origin
from pictrain.train.origin import TrainingOrigin
from pictrain.train.relay import TrainingSink

log = logging.getLogger(__name__)

# Wall time between two checkpoint uploads. A preempted run loses at most this much (plus one
# epoch) of training; the upload of a large model stays rare on fast epochs. Tests set 0 (every
# epoch) through PICTRAIN_CHECKPOINT_MINUTES; production leaves it alone.
DEFAULT_INTERVAL_MINUTES = 10.0
# What a resume may change: ultralytics' trainer applies these over the checkpoint's arguments
# (`BaseTrainer.check_resume`), so a checkpoint is accepted with any of them changed and the
# resumed training gets the new values (`resume_arguments`). Any other parameter that differs
# from the checkpoint's makes the checkpoint a different training.
RESUME_ADJUSTABLE = frozenset(
    {"batch", "device", "workers", "cache", "patience", "save_period", "close_mosaic", "imgsz"}
)
# With optimizer=auto, ultralytics writes its own choice of these into the checkpoint
# (`BaseTrainer.build_optimizer`: the optimizer, lr0, and warmup_bias_lr 0).
AUTO_OPTIMIZER_CHOICES = frozenset({"optimizer", "lr0", "warmup_bias_lr"})


@dataclass(frozen=True)
class Checkpoint:
    """What a last.pt says about its training: enough to decide whether to resume from it."""

    path: Path
    epochs_done: int  # 0 for a checkpoint without optimizer state (a finished, stripped run)
    args: Mapping[str, Any]
    names: list[str]
    origin: TrainingOrigin | None  # None: not written by the job's trainers
    best_fitness: float | None = None  # of its training's best epoch so far: that best.pt's

    @property
    def resumable(self) -> bool:
        return 0 < self.epochs_done < int(self.args.get("epochs", 0))


def read_checkpoint(path: Path, what: str = "checkpoint") -> Checkpoint | None:
    """None when the file is no ultralytics checkpoint (corrupt, truncated upload...); raises
    `UnsafeWeights` for one whose loading would run code. `what` the file is, in messages."""
    try:
        ckpt = safeload.load(path, f"{what} {path}")
    except safeload.UnreadableWeights as exc:
        log.warning("not resuming: %s", exc)
        return None
    try:
        model = ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"]
        names = [str(name) for _, name in sorted(dict(model.names).items())]
        optimizer_saved = ckpt.get("optimizer") is not None
        epochs_done = ckpt.get("epoch", -1) + 1 if optimizer_saved else 0
        args = dict(ckpt.get("train_args") or {})
        best_fitness = ckpt.get("best_fitness")
    except Exception as exc:
        log.warning("not resuming: checkpoint %s is no ultralytics checkpoint (%s)", path, exc)
        return None
    return Checkpoint(path, epochs_done, args, names, origin.read(path), best_fitness)


def resume_problem(
    checkpoint: Checkpoint,
    task: str,
    names: list[str],
    overrides: Mapping[str, Any],
    now: TrainingOrigin,
) -> str | None:
    """Why this checkpoint cannot continue the training asked for now, or None if it can."""
    if not checkpoint.resumable:
        return "its training is finished"
    if checkpoint.args.get("task") != task:
        return f"it trains {checkpoint.args.get('task')}, not {task}"
    if checkpoint.origin is None:
        return "it does not record which model and starting weights it trains"
    if different := checkpoint.origin.difference(now):
        return different
    if checkpoint.names != names:
        return f"its classes {checkpoint.names} differ from the dataset's {names}"
    free = RESUME_ADJUSTABLE | (
        AUTO_OPTIMIZER_CHOICES if overrides.get("optimizer") == "auto" else frozenset()
    )
    changed = [
        f"{key} {checkpoint.args.get(key)!r} -> {value!r}"
        for key, value in sorted(overrides.items())
        if key not in free and checkpoint.args.get(key, value) != value
    ]
    if changed:
        return f"parameters changed since: {', '.join(changed)}"
    return None


def resume_arguments(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The values of this run that a resume applies over the checkpoint's."""
    return {key: value for key, value in overrides.items() if key in RESUME_ADJUSTABLE}


def pick_resumable(
    candidates: list[Path],
    task: str,
    names: list[str],
    overrides: Mapping[str, Any],
    now: TrainingOrigin,
) -> Checkpoint | None:
    """The furthest-trained candidate that continues this training; each rejection logged."""
    usable = []
    for path in candidates:
        checkpoint = read_checkpoint(path)
        if checkpoint is None:
            continue
        problem = resume_problem(checkpoint, task, names, overrides, now)
        if problem:
            log.info("not resuming from checkpoint %s: %s; training from the start", path, problem)
        else:
            usable.append(checkpoint)
    return max(usable, key=lambda c: c.epochs_done, default=None)


def snapshot(last: Path, folder: Path, name: str) -> Path:
    """A private copy for the backend to take: ultralytics rewrites last.pt every epoch."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(last, folder / name))


def interval_seconds() -> float:
    value = CHECKPOINT_MINUTES.read()
    return 60 * (float(value) if value else DEFAULT_INTERVAL_MINUTES)


class PeriodicCheckpoint:
    """Stores last.pt through the backend at most once per interval, after the epoch's metrics.

    It acts in `on_fit_epoch_end`, registered after the metric callbacks: a checkpoint is queued
    behind the points of its own epoch, so a stored checkpoint never runs ahead of its curves.
    """

    def __init__(self, sink: TrainingSink, folder: Path, interval_s: float) -> None:
        self._sink = sink
        self._folder = folder
        self._interval_s = interval_s
        self._last_store = time.monotonic()
        self._saved = False

    def attach(self, model: Any) -> None:
        model.add_callback("on_model_save", self.on_model_save)
        model.add_callback("on_fit_epoch_end", self.on_fit_epoch_end)

    def on_model_save(self, trainer: Any) -> None:
        self._saved = True

    def on_fit_epoch_end(self, trainer: Any) -> None:
        saved, self._saved = self._saved, False
        # The last epoch (trainer.stop) is finished training: nothing to resume from it.
        if not saved or trainer.stop or time.monotonic() - self._last_store < self._interval_s:
            return
        self._last_store = time.monotonic()
        epoch = trainer.epoch + 1
        self._sink.store_checkpoint(snapshot(trainer.last, self._folder, f"epoch{epoch}.pt"))
        log.info("checkpoint of epoch %d queued for storage", epoch)
