"""Failure categories: what the user must fix vs. what we must fix; each has its own exit code."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user or their data: the message is the whole story, no traceback."""

    exit_code = 2


class PlatformError(Exception):
    """The platform refused or kept failing after retries (bad token, missing experiment...)."""

    exit_code = 3


class JobInterrupted(BaseException):
    """SIGTERM/SIGINT reached the job: a BaseException, so no `except Exception` can eat it."""

    exit_code = 143


INTERNAL_ERROR_EXIT_CODE = 1


class DeployParityError(Exception):
    """The exported model does not score as the weights it came from: ours to fix, not the
    user's; the weights and the export are stored all the same."""

    exit_code = INTERNAL_ERROR_EXIT_CODE
