"""Which platform failures are retried, and how long we wait between tries."""

from __future__ import annotations

import os
import random

os.environ.setdefault("PICSELLIA_SDK_CUSTOM_LOGGING", "1")  # before the SDK is imported

import pytest
import requests
from picsellia import exceptions as px

from pictrain.envvars import RETRY_BASE_DELAY
from pictrain.platform.retry import (
    RetryPolicy,
    default_base_delay,
    is_transient,
    retry_after,
)


def http_error(status: int, headers: dict[str, str] | None = None) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return requests.HTTPError(f"{status} error", response=response)


def wrapped(cause: BaseException) -> px.PicselliaError:
    """What `Client(...)` raises: a plain PicselliaError with the cause as context."""
    try:
        raise cause
    except BaseException:
        try:
            raise px.PicselliaError("cannot connect")
        except px.PicselliaError as outer:
            return outer


@pytest.mark.parametrize(
    "exc",
    [
        px.TooManyRequestError("slow down"),
        px.InternalServerError("boom"),
        px.BadGatewayError("Picsellia is unavailable at the moment."),
        px.PicselliaError("[503] Something went wrong, unavailable"),
        requests.ConnectionError("connection reset"),
        requests.Timeout("read timed out"),
        http_error(429),
        http_error(502),
        wrapped(px.BadGatewayError("down")),
        wrapped(requests.ConnectionError("refused")),
    ],
)
def test_transient_failures_are_retried(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        px.UnauthorizedError("bad token"),
        px.ResourceNotFoundError("no such experiment"),
        px.BadRequestError("invalid"),
        px.NoDataError("No asset retrieved"),
        px.PicselliaError("[418] Something went wrong"),
        http_error(403),
        wrapped(px.UnauthorizedError("bad token")),
        ValueError("a bug of ours"),
    ],
)
def test_permanent_failures_are_not(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_a_cycle_in_the_exception_chain_ends() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first
    assert not is_transient(first)


class Flaky:
    """Fails with `errors` in turn, then returns "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def policy(waits: list[float], attempts: int = 6) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, base_delay=1.0, sleep=waits.append, rng=random.Random(0))


def test_retries_until_success() -> None:
    waits: list[float] = []
    flaky = Flaky(px.BadGatewayError("down"), px.BadGatewayError("down"))
    assert policy(waits).call("read", flaky) == "ok"
    assert flaky.calls == 3 and len(waits) == 2


def test_gives_up_after_the_last_attempt() -> None:
    waits: list[float] = []
    flaky = Flaky(*[px.InternalServerError("boom")] * 5)
    with pytest.raises(px.InternalServerError):
        policy(waits, attempts=3).call("read", flaky)
    assert flaky.calls == 3 and len(waits) == 2


def test_a_permanent_failure_is_raised_at_once() -> None:
    waits: list[float] = []
    flaky = Flaky(px.UnauthorizedError("bad token"))
    with pytest.raises(px.UnauthorizedError):
        policy(waits).call("read", flaky)
    assert flaky.calls == 1 and not waits


def test_backoff_grows_and_is_capped() -> None:
    retry = RetryPolicy(base_delay=1.0, max_delay=5.0, rng=random.Random(1))
    error = px.BadGatewayError("down")
    for attempt in range(1, 8):
        bound = min(5.0, 2**attempt)
        assert all(0 <= retry.delay(attempt, error) <= bound for _ in range(50))
    assert max(retry.delay(6, error) for _ in range(200)) > 4.0


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    retry = RetryPolicy(base_delay=0.001, max_delay=10.0)
    assert retry.delay(1, http_error(429, {"Retry-After": "3"})) >= 3
    assert retry.delay(1, http_error(429, {"Retry-After": "60"})) == 10
    assert retry_after(http_error(429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) is None
    assert retry_after(px.TooManyRequestError("no headers kept")) is None


def test_base_delay_comes_from_the_environment_only_when_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(RETRY_BASE_DELAY.name, raising=False)
    assert default_base_delay() == 1.0 and RetryPolicy().base_delay == 1.0
    monkeypatch.setenv(RETRY_BASE_DELAY.name, "0.01")
    assert RetryPolicy().base_delay == 0.01
    assert RetryPolicy().attempts == 6


def test_writes_get_a_more_patient_policy() -> None:
    base = RetryPolicy(attempts=3, base_delay=0.5)
    patient = base.patient()
    assert patient.attempts > base.attempts and patient.base_delay == 0.5
    assert RetryPolicy(attempts=20).patient().attempts == 20
