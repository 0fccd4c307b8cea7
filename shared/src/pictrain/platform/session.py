"""The workflow commands' way to the platform: the job's connection, retry policy and error
mapping, with the lookups and creates every command repeats."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
from picsellia import Client
from picsellia import exceptions as px

from pictrain.errors import PlatformError, TokenRefused, UserError
from pictrain.platform.connect import EXPECTED, call_platform, connect, first_line
from pictrain.platform.env import read_credentials, read_env_file
from pictrain.platform.retry import RetryPolicy, is_transient
from pictrain.platform.transport import never_sent

T = TypeVar("T")
PAGE_SIZE = 100  # items asked per page of a paged listing
# A 409 is an answer too: what we were creating exists (maybe made by a concurrent run).
_EXPECTED = (*EXPECTED, px.ResourceConflictError)


class AlreadyThere(UserError):
    """The platform answered 409 to a call sent once: what it would do is done or under way."""


class Refused(UserError):
    """The platform refused a call sent once (400, 422): its reason, in one line."""


class MaybeDone(PlatformError):
    """A call sent once went out and no clear answer came back (a lost reply, a 5xx): it may
    have been carried out, so it is not sent again."""


@dataclass
class Platform:
    client: Client
    policy: RetryPolicy

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A call safe to repeat, retried as the job retries (see `retry.py`)."""
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
        """(the thing, whether it was created now). Every attempt looks before it creates: a
        create whose answer was lost (a dropped reply, a 502 after it landed) is found by the
        retry, on a server that refuses twins with a 409 or on one that would make them."""
        created = False

        def attempt() -> T:
            nonlocal created
            try:
                return get()  # `created` stays as an earlier attempt that sent a create left it
            except (px.ResourceNotFoundError, px.NoDataError):
                pass
            created = True
            try:
                return create()
            except px.ResourceConflictError:  # made meanwhile, by a concurrent run
                created = False
                return get()

        return self.call(f"get or create {what}", attempt), created

    def ensure(self, what: str, present: Callable[[], bool], act: Callable[[], Any]) -> bool:
        """Do `act` unless `present()` says it is done; every attempt looks first, so a retry
        after a lost answer does not do it twice. True when it was done now."""
        done = False

        def attempt() -> None:
            nonlocal done
            if present():
                return
            done = True
            try:
                act()
            except px.ResourceConflictError:  # done meanwhile, by a concurrent run
                done = False

        self.call(what, attempt)
        return done

    def pages(
        self, what: str, list_page: Callable[[int, int], list[T]], size: int = PAGE_SIZE
    ) -> Iterator[T]:
        """Every item of a listing the SDK reads one page of (`list_page(limit, offset)`),
        page after page until an empty one: right whatever page size the server allows."""
        offset = 0
        while page := self.call(f"{what} (from {offset})", list_page, size, offset):
            yield from page
            offset += len(page)

    def remove(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        """A delete; one already gone (a concurrent run, the SDK's own re-sent DELETE) is done."""
        with contextlib.suppress(px.ResourceNotFoundError):
            self.call(what, fn, *args)

    def once(self, what: str, fn: Callable[..., Any], *args: Any) -> bool:
        """A set-up the SDK cannot read back: False when the platform answered 409 (it is
        there, maybe from a retry after a lost reply). On a server without that 409, a post
        repeated makes a twin: callers record what they posted (docs/architecture.md)."""
        try:
            self.call(what, fn, *args)
        except px.ResourceConflictError:
            return False
        return True

    def send_once(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A call that starts something and cannot be looked up afterwards (a launch): sent at
        most once, never retried. AlreadyThere (409), Refused (400), MaybeDone when it may have
        been carried out (a lost reply, a 5xx); PlatformError when it surely was not (no
        connection, 429, another answer)."""
        try:
            return fn(*args, **kwargs)
        except px.UnauthorizedError:
            raise TokenRefused() from None
        except px.ResourceConflictError as exc:
            raise AlreadyThere(f"could not {what}: {first_line(exc)}") from None
        except px.BadRequestError as exc:
            raise Refused(first_line(exc)) from None
        except Exception as exc:
            unsent = isinstance(exc, requests.RequestException) and never_sent(exc)
            if unsent or isinstance(exc, px.TooManyRequestError):
                raise PlatformError(f"could not {what}: {first_line(exc)}") from None
            if is_transient(exc):
                raise MaybeDone(f"could not {what} ({first_line(exc)})") from None
            if isinstance(exc, px.PicselliaError):  # an answer (404, 403...): nothing done
                raise PlatformError(f"could not {what}: {first_line(exc)}") from None
            raise


def open_platform(env_file: Path, environ: Mapping[str, str] = os.environ) -> Platform:
    """The environment wins over the file, as with docker and most dotenv readers."""
    context = read_credentials({**read_env_file(env_file), **environ})
    # The SDK logs every call it makes at INFO and failures with a traceback; our commands
    # report what happened themselves, in one line.
    logging.getLogger("picsellia").setLevel(logging.CRITICAL)
    policy = RetryPolicy()
    return Platform(connect(context, policy), policy)
