"""ultralytics callbacks -> backend curves: one point per epoch, under ultralytics' names."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

from pictrain.platform.base import Backend
from pictrain.train.relay import TrainingSink

log = logging.getLogger(__name__)
NOT_METRICS = ("epoch", "time")  # results.csv columns that are no curve


def metric_name(ultralytics_key: str) -> str:
    """`metrics/mAP50(B)` -> `val/mAP50(B)`: ultralytics files validation metrics under metrics/."""
    return ultralytics_key.replace("metrics/", "val/", 1)


class EpochMetrics:
    """Sends each finished epoch's losses, validation metrics and learning rates.

    ultralytics fires `on_fit_epoch_end` once more after training for its final validation of
    best.pt; that is not an epoch, so only calls preceded by `on_train_epoch_end` count.
    """

    def __init__(self, sink: TrainingSink) -> None:
        self._sink = sink
        self._epoch_trained = False
        self.steps: set[int] = set()  # epochs sent from this process

    def attach(self, model: Any) -> None:
        model.add_callback("on_train_epoch_end", self.on_train_epoch_end)
        model.add_callback("on_fit_epoch_end", self.on_fit_epoch_end)

    def on_train_epoch_end(self, trainer: Any) -> None:
        self._epoch_trained = True

    def on_fit_epoch_end(self, trainer: Any) -> None:
        if not self._epoch_trained:
            return
        self._epoch_trained = False
        step = trainer.epoch + 1
        values = {
            **trainer.label_loss_items(trainer.tloss, prefix="train"),
            **(trainer.metrics or {}),
            **trainer.lr,
        }
        for key, value in values.items():
            self._sink.log_series(metric_name(key), step, float(value))
        self.steps.add(step)


def read_results(path: Path) -> dict[int, dict[str, float]]:
    """ultralytics' results.csv by epoch. A resumed run appends to the file, so an epoch trained
    twice (after a checkpoint, before a preemption) appears twice: the last row wins."""
    if not path.is_file():
        return {}
    rows: dict[int, dict[str, float]] = {}
    with path.open(newline="") as stream:
        for row in csv.DictReader(stream):
            clean = {k.strip(): v.strip() for k, v in row.items() if k and v}
            rows[int(float(clean["epoch"]))] = {
                metric_name(k): float(v) for k, v in clean.items() if k not in NOT_METRICS
            }
    return rows


def replay_missing(results_csv: Path, first_step: int, sent: set[int], backend: Backend) -> int:
    """Send the epochs of this training that no callback sent; return how many.

    A safety net: the callbacks (in a DDP run, rank 0's, through the relay) send every epoch
    live; should one be lost on the way, results.csv, which ultralytics writes either way,
    still has it.
    """
    missing = {
        step: values
        for step, values in read_results(results_csv).items()
        if step >= first_step and step not in sent
    }
    for step, values in sorted(missing.items()):
        for name, value in values.items():
            backend.log_series(name, step, value)
    if missing:
        log.info("sent %d epochs of metrics from %s", len(missing), results_csv.name)
    return len(missing)
