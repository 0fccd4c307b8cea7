"""The SDK's HTTP session, with one change: a POST to the platform whose reply was lost is not
sent again behind pictrain's back.

`Connection.post` (SDK 6.37) carries `@retry(requests.ConnectionError)`: when a connection drops
after the request went out, the SDK posts it again, up to five times, before its caller sees
anything. A create whose first post landed then makes a twin on any server that does not refuse
it with a 409 (data records, data added to a version, a launch). Here such a failure becomes
`ReplyLost`, which is no ConnectionError: the SDK lets it through, and pictrain's retry policy
decides what to send again, after a look at what the platform holds (`retry.py`).

A request that never went out (refused, connect timeout, TLS handshake, proxy) stays a
ConnectionError, which the SDK may re-send safely. Other methods are idempotent (GET, PATCH,
DELETE) and keep the SDK's own retries; so do uploads to storage, which are outside `/api/`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError

NOT_IDEMPOTENT = "POST"
API_PREFIX = "/api/"


class ReplyLost(requests.RequestException):
    """A request went out and no answer came back: the platform may have carried it out."""


def guarded_session(host: str) -> requests.Session:
    """A session for `picsellia.Client(session=...)`: the platform's API behind the guard.

    Proxy variables and REQUESTS_CA_BUNDLE are honoured as by the SDK's own session."""
    url = urlsplit(host)
    session = requests.Session()
    session.mount(f"{url.scheme}://{url.netloc}{API_PREFIX}", _NoBlindResend())
    return session


class _NoBlindResend(HTTPAdapter):
    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().send(request, *args, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            if request.method != NOT_IDEMPOTENT or never_sent(exc):
                raise
            path = urlsplit(request.url or "").path  # no query string: it may carry a secret
            raise ReplyLost(f"no answer to {request.method} {path}", request=request) from exc


def never_sent(exc: requests.RequestException) -> bool:
    """The connection failed before the request went out, so re-sending it is safe."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if isinstance(exc, requests.exceptions.ProxyError):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, ConnectTimeoutError)  # NewConnectionError is one too
