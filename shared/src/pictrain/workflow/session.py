"""Reaching the platform from the workflow commands: credentials from the environment and a
`.env` file, then the job's own connect and retry code."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from picsellia import Client
from picsellia import exceptions as px

from pictrain.platform.connect import EXPECTED, call_platform, connect
from pictrain.platform.env import read_credentials
from pictrain.platform.retry import RetryPolicy

T = TypeVar("T")
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
# A 409 is an answer too: what we were creating exists (maybe made by our own lost request).
_EXPECTED = (*EXPECTED, px.ResourceConflictError)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as users keep them (comments, `export`, quotes); read, never sourced."""
    if not path.is_file():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        match = _LINE.match(line)
        if match is None or line.lstrip().startswith("#"):
            continue
        value = match.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[match.group(1)] = value
    return values


@dataclass
class Platform:
    client: Client
    policy: RetryPolicy

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """An idempotent call, retried as the job retries; see `call_platform`."""
        return call_platform(self.policy, what, fn, *args, expected=_EXPECTED, **kwargs)

    def find(self, what: str, fn: Callable[..., T], *args: Any) -> T | None:
        """What the lookup finds, or None."""
        try:
            return self.call(f"find {what}", fn, *args)
        except (px.ResourceNotFoundError, px.NoDataError):
            return None

    def get_or_create(
        self, what: str, get: Callable[[], T], create: Callable[[], T]
    ) -> tuple[T, bool]:
        """(the thing, whether it was created now). A create that went through but whose
        answer was lost is retried, meets a 409, and the thing is found instead: one thing."""
        found = self.find(what, get)
        if found is not None:
            return found, False
        try:
            return self.call(f"create {what}", create), True
        except px.ResourceConflictError:
            return self.call(f"find {what}", get), False


def open_platform(env_file: Path, environ: Mapping[str, str] = os.environ) -> Platform:
    """The environment wins over the file, as with docker and most dotenv readers."""
    context = read_credentials({**read_env_file(env_file), **environ})
    # The SDK logs every call it makes at INFO and failures with a traceback; our commands
    # report what happened themselves, in one line.
    logging.getLogger("picsellia").setLevel(logging.CRITICAL)
    policy = RetryPolicy()
    return Platform(connect(context, policy), policy)
