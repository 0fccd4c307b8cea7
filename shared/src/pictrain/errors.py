"""Failure categories: what the user must fix vs. what we must fix; each has its own exit code."""

from __future__ import annotations

from collections.abc import Iterator


class UserError(Exception):
    """Bad input from the user or their data: the message is the whole story, no traceback."""

    exit_code = 2


class TokenRefused(UserError):
    """The platform answered 401 mid-run: the token expired or was revoked. Nothing more will
    get through, so the job stops trying and fails with this reason."""

    def __init__(self) -> None:
        super().__init__("the platform refused the API token (expired or revoked?)")


class PlatformError(Exception):
    """The platform refused or kept failing after retries (bad token, missing experiment...)."""

    exit_code = 3


class JobInterrupted(BaseException):
    """SIGTERM/SIGINT reached the job: a BaseException, so no `except Exception` can eat it.
    `at` is when (time.monotonic()): what the job stores before its SIGKILL counts from there."""

    exit_code = 143

    def __init__(self, signal_name: str, at: float) -> None:
        super().__init__(signal_name)
        self.at = at

    @property
    def reason(self) -> str:
        return f"stopped by {self}"


INTERNAL_ERROR_EXIT_CODE = 1


class DeployParityError(Exception):
    """The exported model does not score as the weights it came from: ours to fix, not the
    user's; the weights and the export are stored all the same."""

    exit_code = INTERNAL_ERROR_EXIT_CODE


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what caused it, down the chain (a cycle is walked once)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
