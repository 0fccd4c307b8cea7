"""Request/reply types and a small path-template router.

The SDK is the contract: handlers see a parsed request and return a reply, and an `ApiError`
becomes the JSON error body the SDK's `check_status_code` reads (`message`, `detail`).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.emulator.state import State

JsonValue = Any


class ApiError(Exception):
    """Raised by handlers; rendered as `{"message": ..., "detail": ...}` with `status`."""

    def __init__(self, status: int, message: str, detail: JsonValue = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    state: State
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise ApiError(400, f"body is not JSON: {e}") from e

    def uuid(self, name: str) -> uuid.UUID:
        """A path parameter as a UUID: a malformed id is a 404, as on the platform."""
        try:
            return uuid.UUID(self.params[name])
        except ValueError as e:
            raise ApiError(404, f"invalid id {self.params[name]!r}") from e


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _default(value: object) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_reply(payload: JsonValue, status: int = 200) -> Reply:
    body = json.dumps(payload, default=_default).encode()
    return Reply(status, body, {"Content-Type": "application/json"})


def no_content() -> Reply:
    """204: the SDK's HTTP stack chokes on a 204 that carries a body, so this one never does."""
    return Reply(204)


def error_reply(error: ApiError) -> Reply:
    return json_reply({"message": error.message, "detail": error.detail}, error.status)


Handler = Callable[[Request], Reply]

_PARAM = re.compile(r"{(\w+)(:path)?}")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    """Maps (method, path template) to handlers; `{name}` is one segment, `{name:path}` many."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str) -> Callable[[Handler], Handler]:
        def compile_param(m: re.Match[str]) -> str:
            return f"(?P<{m.group(1)}>{'.+' if m.group(2) else '[^/]+'})"

        regex = _PARAM.sub(
            compile_param, re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
        )
        pattern = re.compile(f"^{regex}$")

        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, template, pattern, handler))
            return handler

        return register

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        for route in self.routes:
            if route.method != method:
                continue
            match = route.pattern.match(path)
            if match:
                return route.handler, match.groupdict()
        return None
