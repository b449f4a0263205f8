"""The HTTP side of the fake API server: routing, the request handler, the listener.

A test double. Owns: turning a request path into (resource, namespace,
name), answering JSON and chunked watch streams over HTTP/1.1, recording
every request, and naming its threads. What each request does is decided
by ``FakeKube`` (server.py).
"""
from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .selectors import SelectorError
from .store import BY_PATH, Resource, StoreError

if TYPE_CHECKING:
    from .server import FakeKube

JSON = "application/json"
REASONS = {410: "Expired", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
           403: "Forbidden", 404: "NotFound"}


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it (``method`` is "CONNECT" for a dropped connection)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    at: float  # time.monotonic()

    @property
    def is_watch(self) -> bool:
        return self.query.get("watch") in ("true", "1")


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class Route:
    """Where a request path points: a collection or one object of one resource."""

    def __init__(self, resource: Resource, namespace: str | None, name: str | None):
        self.resource = resource
        self.namespace = namespace
        self.name = name


def parse_path(path: str) -> Route | None:
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        gv, rest = "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3 or (len(rest) == 3 and rest[2] != "status"):
        return None
    resource = BY_PATH.get((gv, rest[0]))
    if resource is None or (namespace is not None and not resource.namespaced):
        return None
    return Route(resource, namespace, rest[1] if len(rest) > 1 else None)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked watches, like the real server
    server: HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class name
        pass  # the request log in FakeKube replaces stderr noise

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def handle_one_request(self) -> None:
        fake = self.server.fake
        if fake._dropping:
            # "Unavailable but listening": accept, count, hang up without a word.
            fake._record("CONNECT", "", {}, 0)
            self.close_connection = True
            return
        super().handle_one_request()

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake = self.server.fake
        if self.command == "GET" and query.get("watch") in ("true", "1"):
            fake._watches_released.wait()  # before faults, so a fault set while held applies on release
        status = fake._fault_for(self.command, url.path, query)
        if status:
            fake._record(self.command, url.path, query, status)
            self._send_json(status, status_body(status, REASONS.get(status, "InternalError"), "injected fault"))
            return
        route = parse_path(url.path)
        if route is None:
            fake._record(self.command, url.path, query, 404)
            self._send_json(404, status_body(404, "NotFound", f"the server could not find {url.path}"))
            return
        try:
            if self.command == "GET" and route.name is None and query.get("watch") in ("true", "1"):
                fake._record(self.command, url.path, query, 200)
                fake._serve_watch(self, route, query)
                return
            code, payload = fake._serve(self.command, route, query, body, self.headers.get("Content-Type", ""))
        except StoreError as exc:
            code, payload = exc.code, status_body(exc.code, exc.reason, str(exc))
        except (SelectorError, ValueError) as exc:
            code, payload = 400, status_body(400, "BadRequest", str(exc))
        fake._record(self.command, url.path, query, code)
        self._send_json(code, payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _send_json(self, code: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", JSON)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    # chunked transfer encoding, one event per chunk
    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], fake: FakeKube):
        self.fake = fake
        super().__init__(addr, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up and injected disconnects are normal here, not tracebacks.
        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Named threads, so that tests can check that none is left behind.
        t = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                             name=f"fakekube-conn-{client_address[1]}", daemon=True)
        t.start()
