"""ultralytics callbacks -> backend curves: one point per epoch, under ultralytics' names."""

from __future__ import annotations

from typing import Any

from pictrain.platform.base import Backend


def metric_name(ultralytics_key: str) -> str:
    """`metrics/mAP50(B)` -> `val/mAP50(B)`: ultralytics files validation metrics under metrics/."""
    return ultralytics_key.replace("metrics/", "val/", 1)


class EpochMetrics:
    """Sends each finished epoch's losses, validation metrics and learning rates.

    ultralytics fires `on_fit_epoch_end` once more after training for its final validation of
    best.pt; that is not an epoch, so only calls preceded by `on_train_epoch_end` count.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._epoch_trained = False

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
            self._backend.log_series(metric_name(key), step, float(value))
