"""Retry platform calls: the SDK itself never retries an HTTP error status, and no longer
re-sends a POST whose reply was lost (`transport.py`), so what is sent again is decided here.

Every call given to a policy must be safe to repeat: idempotent (reads, updates, deletes, logs
that replace), or a function that looks at what the platform holds before it acts (creates,
uploads, adding data: see `session.Platform.get_or_create`). A 502 or a lost reply does not
say whether the call was carried out; only such a look can.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

import requests
from picsellia import exceptions as px

from pictrain.envvars import RETRY_BASE_DELAY
from pictrain.errors import TokenRefused, exception_chain
from pictrain.platform.transport import ReplyLost

log = logging.getLogger(__name__)
T = TypeVar("T")

WRITE_ATTEMPTS = 10

_TRANSIENT = (
    px.TooManyRequestError,
    px.InternalServerError,
    px.BadGatewayError,
    px.NetworkError,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    ReplyLost,
)


def is_transient(exc: BaseException) -> bool:
    """429, 5xx, dropped connections and lost replies, however the SDK wrapped them.

    Statuses without an exception class of their own (503, 504) come as a generic
    PicselliaError "[503] ..."; the SDK's upload helpers raise requests' HTTPError; the client
    constructor wraps everything in PicselliaError with the cause as context.
    """
    for seen in exception_chain(exc):
        if isinstance(seen, _TRANSIENT):
            return True
        if isinstance(seen, requests.HTTPError) and seen.response is not None:
            status = seen.response.status_code
            return status == 429 or status >= 500
        if isinstance(seen, px.PicselliaError) and str(seen).startswith("[5"):
            return True
    return False


def is_refused(exc: BaseException) -> bool:
    """401: the token is no longer accepted, however the SDK wrapped it."""
    for seen in exception_chain(exc):
        if isinstance(seen, px.UnauthorizedError):
            return True
        if isinstance(seen, requests.HTTPError) and seen.response is not None:
            return seen.response.status_code == 401
    return False


def retry_after(exc: BaseException) -> float | None:
    """The server's Retry-After in seconds, where the exception kept the response.

    The SDK's own TooManyRequestError drops the headers; requests' HTTPError keeps them.
    """
    for seen in exception_chain(exc):
        response = getattr(seen, "response", None)
        value = response.headers.get("Retry-After") if response is not None else None
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None  # an HTTP date: rare enough to fall back to our own backoff
    return None


DEFAULT_BASE_DELAY_S = 1.0


def default_base_delay() -> float:
    """DEFAULT_BASE_DELAY_S, unless `PICTRAIN_RETRY_BASE_DELAY` says otherwise. Tests shorten
    every wait so; production never sets it. It only scales the backoff: attempts and the
    classification of errors stay the same."""
    value = RETRY_BASE_DELAY.read()
    return float(value) if value else DEFAULT_BASE_DELAY_S


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in each wait; a server's
    Retry-After is honoured up to `max_delay`."""

    attempts: int = 6
    base_delay: float = field(default_factory=default_base_delay)
    max_delay: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def patient(self) -> RetryPolicy:
        """For writes that must land (final artifacts, run status): one SDK call such as
        `store` crosses up to five routes, and losing a trained model to a one-minute outage
        costs the whole run. Up to ~3 minutes of waiting with the default delays."""
        return replace(self, attempts=max(self.attempts, WRITE_ATTEMPTS))

    def call(self, what: str, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        attempt = 1
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if attempt >= self.attempts or not is_transient(exc):
                    raise
                delay = self.delay(attempt, exc)
                log.warning(
                    "%s failed (%s), retry %d/%d in %.1fs",
                    what,
                    _short(exc),
                    attempt,
                    self.attempts - 1,
                    delay,
                )
                self.sleep(delay)
                attempt += 1

    def delay(self, attempt: int, exc: BaseException) -> float:
        """Wait before retry number `attempt` (1-based)."""
        backoff = self.rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
        asked = retry_after(exc)
        return backoff if asked is None else min(self.max_delay, max(backoff, asked))


class BestEffort:
    """Retried calls whose failure costs only what the UI shows (job logs, run status): logged,
    never raised. After a refused token nothing is tried again, and that is said once."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.refused = False

    def __call__(
        self, what: str, fn: Callable[..., T], *args: object, **kwargs: object
    ) -> T | None:
        if self.refused:
            return None
        try:
            return self.policy.call(what, fn, *args, **kwargs)
        except Exception as exc:
            if is_refused(exc):
                self.refused = True
                log.warning("could not %s: %s; no more platform calls", what, TokenRefused())
            else:
                log.warning("could not %s: %s", what, _short(exc))
            return None


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:120]}"
