"""On-demand fault injection: rules matched on method + path, fired a limited number of times.

The SDK never retries HTTP error statuses and retries connection errors 5 times over ~7.5 s, so
tests need precise, count-limited faults to prove that our own adapter retries what it should.
"""

from __future__ import annotations

import fnmatch
import random
import re
import threading
from dataclasses import dataclass


def request_matches(
    method_pattern: str, path_pattern: str | re.Pattern[str], method: str, path: str
) -> bool:
    """`*` or an exact method; a glob (`*` crosses `/`) or a regex searched in the path."""
    if method_pattern != "*" and method_pattern.upper() != method:
        return False
    if isinstance(path_pattern, re.Pattern):
        return path_pattern.search(path) is not None
    return fnmatch.fnmatchcase(path, path_pattern)


@dataclass
class FaultRule:
    """One rule. `path` is a glob (`/api/experiment/*/logs`) or a compiled regex (`re.search`).

    Effects combine: `latency` first (plus the request body's size over `bytes_per_second`: a
    slow link for uploads), then `drop` (close the socket, no response) or `status`
    (with `Retry-After` when `retry_after` is set), or `truncate` (the real reply, cut off in
    the middle of its body); `lose_reply` handles the request, then closes the socket instead
    of answering (the call landed, the client cannot know: what makes a blind retry of a
    non-idempotent call duplicate it). `times=None` fires forever; `probability` fires on a
    seeded draw. `fired` counts how often it fired.
    """

    method: str
    path: str | re.Pattern[str]
    status: int | None = None
    retry_after: float | None = None
    latency: float = 0.0
    drop: bool = False
    times: int | None = 1
    probability: float | None = None
    truncate: bool = False
    lose_reply: bool = False
    bytes_per_second: float | None = None
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        return request_matches(self.method, self.path, method, path)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


class Faults:
    """The active rules. The first live rule matching a request fires; rules run out by count."""

    def __init__(self, seed: int = 0) -> None:
        self._rules: list[FaultRule] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def add(
        self,
        method: str,
        path: str | re.Pattern[str],
        *,
        status: int | None = None,
        retry_after: float | None = None,
        latency: float = 0.0,
        drop: bool = False,
        times: int | None = 1,
        probability: float | None = None,
        truncate: bool = False,
        lose_reply: bool = False,
        bytes_per_second: float | None = None,
    ) -> FaultRule:
        effects = (status is not None, drop, truncate, lose_reply)
        if not any(effects) and latency <= 0 and not bytes_per_second:
            raise ValueError(
                "a fault needs a status, drop, truncate, lose_reply, a latency or a bandwidth"
            )
        if sum(effects) > 1:
            raise ValueError("one of status, drop, truncate and lose_reply")
        rule = FaultRule(
            method,
            path,
            status,
            retry_after,
            latency,
            drop,
            times,
            probability,
            truncate,
            lose_reply,
            bytes_per_second,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def draw(self, method: str, path: str) -> FaultRule | None:
        """The rule to apply to this request, counted as fired; None when no fault applies."""
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or not rule.matches(method, path):
                    continue
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                rule.fired += 1
                return rule
        return None
