"""Retry idempotent platform calls: the SDK itself never retries an HTTP error status."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import requests
from picsellia import exceptions as px

log = logging.getLogger(__name__)
T = TypeVar("T")

_TRANSIENT = (
    px.TooManyRequestError,
    px.InternalServerError,
    px.BadGatewayError,
    px.NetworkError,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def is_transient(exc: BaseException) -> bool:
    """429, 5xx and dropped connections, however the SDK wrapped them.

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


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what caused it, down the chain."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in each wait."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def call(self, what: str, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        attempt = 1
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if attempt >= self.attempts or not is_transient(exc):
                    raise
                delay = self.rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
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


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:120]}"
