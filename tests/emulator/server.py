"""The HTTP layer: auth, fault injection, request recording, dispatch and reply writing.

One thread per connection (the SDK keeps connections alive and downloads with a thread pool).
`stop()` closes idle keep-alive sockets itself, so no handler thread outlives the server.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.emulator.faults import FaultRule, Faults
from tests.emulator.routes.serving import LOGIN_PATHS, SERVICE_PREFIX
from tests.emulator.routing import ApiError, Reply, Request, Router, error_reply, json_reply
from tests.emulator.state import RequestRecord, State
from tests.emulator.storage import STORAGE_PREFIX


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], state: State, router: Router, faults: Faults):
        super().__init__(address, Handler)
        self.state = state
        self.router = router
        self.faults = faults
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):  # already closed by the client
                    connection.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: without this, Nagle + delayed ACK add 40 ms.
    disable_nagle_algorithm = True
    server: EmulatorServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, alive=True)

    def finish(self) -> None:
        self.server.track(self.connection, alive=False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests read `state.requests` instead of stderr."""

    def __getattr__(self, name: str) -> Any:
        # Every method (GET, XGET, ...) goes through one dispatcher, unknown ones included.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _dispatch(self) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        body = self._read_body()
        record = RequestRecord(self.command, url.path, url.query, status=None)
        with state.lock:
            state.requests.append(record)
        rule = self.server.faults.draw(self.command, url.path)
        if rule is not None:
            record.fault = True
            if self._apply_fault(rule, record, len(body)):
                return
        request = Request(self.command, url.path, parse_qs(url.query), self.headers, body, state)
        reply = self._handle(request, record)
        if rule is not None and rule.lose_reply:  # handled, but the client never hears of it
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        with state.lock:
            record.status = reply.status
        self._send(reply, cut=rule is not None and rule.truncate)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _apply_fault(self, rule: FaultRule, record: RequestRecord, body_size: int) -> bool:
        """Apply the rule; True when it answered (or dropped) the request itself."""
        delay = rule.latency + (body_size / rule.bytes_per_second if rule.bytes_per_second else 0)
        stopped = delay > 0 and self.server.stopping.wait(delay)
        if rule.drop or stopped:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if rule.status is None:
            return False
        reply = json_reply(
            {"message": f"emulated fault {rule.status}", "detail": None}, rule.status
        )
        if rule.retry_after is not None:
            reply.headers["Retry-After"] = f"{rule.retry_after:g}"
        with self.server.state.lock:
            record.status = reply.status
        self._send(reply)
        return True

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization")
        if header is not None:
            if header == f"Bearer {request.state.token}":
                return True
            # Serving tokens open the serving routes only; their handlers check the deployment.
            token = header.removeprefix("Bearer ")
            return request.path.startswith(SERVICE_PREFIX) and token in request.state.service_tokens
        # Presigned storage URLs carry their own signature, checked by their handlers; service
        # logins carry the API token in their body.
        return request.path.startswith(f"{STORAGE_PREFIX}/") or request.path in LOGIN_PATHS

    def _handle(self, request: Request, record: RequestRecord) -> Reply:
        state = request.state
        if not self._authorized(request):
            return error_reply(ApiError(401, "invalid or missing Bearer token"))
        resolved = self.server.router.resolve(request.method, request.path)
        if resolved is None:
            with state.lock:
                state.unknown_routes.append(record)
            message = f"EMULATOR: no route for {request.method} {request.path}"
            sys.stderr.write(f"{message}\n")
            return error_reply(ApiError(404, message, "add it to tests/emulator/routes"))
        handler, request.params = resolved
        try:
            with state.lock:
                return handler(request)
        except ApiError as error:
            return error_reply(error)
        except Exception as error:
            # A handler bug must fail the test loudly, not pass as a platform error.
            with state.lock:
                state.server_errors.append(traceback.format_exc())
            return error_reply(ApiError(500, f"EMULATOR BUG: {error!r}"))

    def _send(self, reply: Reply, cut: bool = False) -> None:
        """`cut`: announce the whole body, send half of it and close, as a connection lost
        in the middle of a download."""
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status == 204:
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if cut:
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(reply.body)
