"""Epoch curves as Picsellia LINE logs, which append whatever is posted: at most one point per
epoch, whatever retries and relaunches happen.

A LINE log is a bare list of values, so a point's epoch is its position. An epoch whose value is
NaN or infinite is not sent (the SDK would send null): the curve skips it, and every position
after it shifts by one. Which epochs each curve skipped is kept on the experiment, in the TABLE
log `non-finite metrics` (which the user sees too), so that the retry check and the trimming of
a resumed run still count right, in this process or a later one.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from picsellia import exceptions as px
from picsellia.types.enums import LogType

from pictrain.platform.base import NON_FINITE_LOG, is_sendable

log = logging.getLogger(__name__)
SKIPPED_COLUMN = "skipped epochs"


class CurveWriter:
    """Call `append` from one thread (the backend's sender), in epoch order."""

    def __init__(self, experiment: Any) -> None:
        self._experiment = experiment
        self._started: set[str] = set()
        self._attempted: set[tuple[str, int]] = set()  # points posted at least once
        self._kept: dict[str, list[Any]] = {}  # curve -> the earlier points it must start from
        self._skipped: dict[str, set[int]] | None = None  # curve -> epochs not sent
        self._warned: set[str] = set()

    def append(self, name: str, step: int, value: float) -> None:
        """The first point of a curve in this process first trims the stored curve to the
        points of the epochs before `step`: a relaunch from epoch 1 starts the curve again, a
        resumed one drops what its previous attempt logged after the checkpoint.

        Appending is not idempotent: when a retried post may have landed (a dropped reply),
        the stored curve tells whether this point is already there.
        """
        if name not in self._started:
            self._start(name, step)
            self._started.add(name)
        if not is_sendable(name, value, step, self._warned):
            self._skip(name, step)
            return
        points_so_far = step - len(self._skipped_before(name, step))
        if (name, step) in self._attempted and len(self._stored(name)) >= points_so_far:
            return
        self._attempted.add((name, step))
        self._experiment.log(name, [value], LogType.LINE)

    def _start(self, name: str, step: int) -> None:
        """Rewrite the curve as its points before `step` (delete, post them again) if it holds
        more. What to keep is read once: a retry after the delete must not read it back empty."""
        stored = self._stored(name)
        if name not in self._kept:
            before = step - 1 - len(self._skipped_before(name, step))
            self._kept[name] = stored[:before]
            if len(stored) < before:
                log.warning(
                    "curve %s holds %d points before epoch %d: earlier points were lost",
                    name,
                    len(stored),
                    step,
                )
            skipped = self._skips()
            if any(s >= step for s in skipped.get(name, ())):  # this attempt decides those anew
                skipped[name] = self._skipped_before(name, step)
                self._save_skips()
        kept = self._kept[name]
        if stored == kept:
            return
        with contextlib.suppress(px.ResourceNotFoundError):
            self._experiment.get_log(name).delete()
        if kept:
            self._experiment.log(name, kept, LogType.LINE)

    def _skip(self, name: str, step: int) -> None:
        skipped = self._skips().setdefault(name, set())
        if step not in skipped:
            skipped.add(step)
            self._save_skips()

    def _skipped_before(self, name: str, step: int) -> set[int]:
        return {s for s in self._skips().get(name, set()) if s < step}

    def _skips(self) -> dict[str, set[int]]:
        """Read once per process from the experiment (an earlier attempt's, on a resume)."""
        if self._skipped is None:
            try:
                table = self._experiment.get_log(NON_FINITE_LOG).data
            except px.ResourceNotFoundError:
                table = {}
            self._skipped = parse_skips(table)
        return self._skipped

    def _save_skips(self) -> None:
        self._experiment.log(NON_FINITE_LOG, skips_table(self._skips()), LogType.TABLE)

    def _stored(self, name: str) -> list[Any]:
        try:
            data = self._experiment.get_log(name).data
        except px.ResourceNotFoundError:
            return []
        return data if isinstance(data, list) else []


def skips_table(skipped: dict[str, set[int]]) -> dict[str, Any]:
    """The TABLE log: one row per curve, its skipped epochs as text (`3, 4`)."""
    rows = sorted(name for name, steps in skipped.items() if steps)
    return {
        "columns": [SKIPPED_COLUMN],
        "rows": rows,
        "data": [[", ".join(str(s) for s in sorted(skipped[name]))] for name in rows],
    }


def parse_skips(table: Any) -> dict[str, set[int]]:
    if not isinstance(table, dict):
        return {}
    rows, data = table.get("rows") or [], table.get("data") or []
    return {
        name: {int(s) for s in str(cells[0]).split(",") if s.strip()}
        for name, cells in zip(rows, data, strict=False)
        if cells
    }
