"""Best-of-N times of two contenders, warmed up once, taking turns to go first.

Wall time (`time.perf_counter`) is the measure; process CPU time (`time.process_time`, all
threads) is kept beside it because other processes on a shared machine disturb it much less.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# A contender prepares its inputs (untimed) and returns the call to time.
Contender = Callable[[], Callable[[], Any]]


@dataclass(frozen=True)
class Runs:
    wall: list[float] = field(default_factory=list)  # seconds per measured run
    cpu: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Timing:
    ours: Runs
    theirs: Runs

    @property
    def best_ours(self) -> float:
        return min(self.ours.wall)

    @property
    def best_theirs(self) -> float:
        return min(self.theirs.wall)

    @property
    def ratio(self) -> float:
        """Ours / theirs, best wall times: below 1 means ours is faster."""
        return self.best_ours / self.best_theirs

    @property
    def cpu_ratio(self) -> float:
        """Ours / theirs, best process CPU times."""
        return min(self.ours.cpu) / min(self.theirs.cpu)


@dataclass(frozen=True)
class Outcome:
    timing: Timing
    ours: Any  # warm-up return values, for the agreement check (paths hold the last run)
    theirs: Any


def compare(ours: Contender, theirs: Contender, repeats: int) -> Outcome:
    """Warm each up once, then time `repeats` rounds; the first to run alternates by round."""
    runs, results = compare_all({"ours": ours, "theirs": theirs}, repeats)
    return Outcome(Timing(runs["ours"], runs["theirs"]), results["ours"], results["theirs"])


def compare_all(
    contenders: dict[str, Contender], repeats: int
) -> tuple[dict[str, Runs], dict[str, Any]]:
    """`compare` for any number of contenders: each warmed up once, then `repeats` rounds in
    a rotating order. Returns each one's runs and its warm-up result."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    results = {name: _timed(contender, Runs()) for name, contender in contenders.items()}
    runs = {name: Runs() for name in contenders}
    order = list(contenders)
    for round_ in range(repeats):
        shift = round_ % len(order)
        for name in order[shift:] + order[:shift]:
            _timed(contenders[name], runs[name])
    return runs, results


def _timed(contender: Contender, runs: Runs) -> Any:
    """Run once; append its wall and CPU seconds to `runs`; return its result."""
    call = contender()
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    runs.cpu.append(time.process_time() - cpu)
    runs.wall.append(time.perf_counter() - wall)
    return result
