"""Epoch curves as Picsellia LINE logs, which append whatever is posted: exactly one point per
epoch, whatever retries and relaunches happen."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from picsellia import exceptions as px
from picsellia.types.enums import LogType

log = logging.getLogger(__name__)


class CurveWriter:
    """Call `append` from one thread (the backend's sender), in epoch order."""

    def __init__(self, experiment: Any) -> None:
        self._experiment = experiment
        self._started: set[str] = set()
        self._attempted: set[tuple[str, int]] = set()  # points posted at least once
        self._kept: dict[str, list[Any]] = {}  # curve -> the earlier points it must start from

    def append(self, name: str, step: int, value: float) -> None:
        """The first point of a curve in this process first trims the stored curve to the
        step - 1 points before it: a relaunch from epoch 1 starts the curve again, a resumed one
        drops what its previous attempt logged after the checkpoint.

        Appending is not idempotent: when a retried post may have landed (a dropped reply),
        the stored curve tells whether this point is already there.
        """
        if (name, step) in self._attempted and len(self._stored(name)) >= step:
            return
        self._attempted.add((name, step))
        if name not in self._started:
            self._start(name, step)
            self._started.add(name)
        self._experiment.log(name, [value], LogType.LINE)

    def _start(self, name: str, step: int) -> None:
        """Rewrite the curve as its first step - 1 points (delete, post them again) if it holds
        more. What to keep is read once: a retry after the delete must not read it back empty."""
        stored = self._stored(name)
        if name not in self._kept:
            self._kept[name] = stored[: step - 1]
            if len(stored) < step - 1:
                log.warning(
                    "curve %s holds %d points before epoch %d: earlier points were lost",
                    name,
                    len(stored),
                    step,
                )
        kept = self._kept[name]
        if stored == kept:
            return
        with contextlib.suppress(px.ResourceNotFoundError):
            self._experiment.get_log(name).delete()
        if kept:
            self._experiment.log(name, kept, LogType.LINE)

    def _stored(self, name: str) -> list[Any]:
        try:
            data = self._experiment.get_log(name).data
        except px.ResourceNotFoundError:
            return []
        return data if isinstance(data, list) else []
