"""The agent's local status socket: JSON over HTTP on a unix socket (mode 0600).

Owns the socket file and its server thread. Routes (GET only):

- ``/v1/status``: the agent's summary (``AgentView.status``);
- ``/v1/show/<topic>``: rows of one topic (pods, services, policies, peers, encryption).

Every answer is one JSON object: ``{"data": ...}`` with 200, or
``{"error": "..."}`` with 404 (unknown path) or 500 (a view failed; logged).
The socket is created under a temporary name, restricted to 0600 and then
renamed into place, so that it is never reachable with looser permissions;
a stale socket (nobody listening) is replaced, a live one is refused.

Must not touch: VPP, Kubernetes; the agent other than through its views.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from .views import TOPICS, AgentView

log = logging.getLogger(__name__)

DEFAULT_STATUS_SOCKET = "/var/run/vppagent/status.sock"
API_PREFIX = "/v1"


class StatusServerError(RuntimeError):
    """The status socket cannot be served (path in use by a live agent, not creatable...)."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"cannot serve status on {path}: {reason}")


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False


def _in_use(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class StatusServer:
    """Serves ``status()`` and ``show(topic)`` (JSON-ready data) on a unix socket."""

    def __init__(self, path: str, status: Callable[[], Any], show: Callable[[str], Any]):
        self.path = path
        self._status = status
        self._show = show
        self._httpd: _UnixHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def for_agent(cls, path: str, agent: Any) -> "StatusServer":
        view = AgentView(agent)
        return cls(path, view.status, view.show)

    def start(self) -> "StatusServer":
        target = Path(self.path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            raise StatusServerError(self.path, f"cannot create its directory: {e.strerror or e}") from None
        if target.exists() or target.is_symlink():
            if _in_use(self.path):
                raise StatusServerError(self.path, "another process is serving it (a second agent?)")
            target.unlink()
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server._handle(self)

            def address_string(self) -> str:
                return "unix"

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("status request: " + fmt % args)

        try:
            tmp.unlink(missing_ok=True)
            httpd = _UnixHTTPServer(str(tmp), Handler, bind_and_activate=False)
            try:
                httpd.server_bind()
                os.chmod(tmp, 0o600)  # before the name becomes reachable
                httpd.server_activate()
                os.rename(tmp, target)
            except BaseException:
                httpd.server_close()
                tmp.unlink(missing_ok=True)
                raise
        except OSError as e:
            raise StatusServerError(self.path, e.strerror or str(e)) from None
        httpd.server_address = str(target)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="vppagent-status", daemon=True)
        self._thread.start()
        log.info("status socket serving", extra={"path": self.path})
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            Path(self.path).unlink()
        except OSError:
            pass
        self._httpd = None

    def __enter__(self) -> "StatusServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?", 1)[0].rstrip("/")
        try:
            if path == f"{API_PREFIX}/status":
                self._send(req, 200, {"data": self._status()})
            elif path.startswith(f"{API_PREFIX}/show/") and path.rsplit("/", 1)[1] in TOPICS:
                self._send(req, 200, {"data": self._show(path.rsplit("/", 1)[1])})
            else:
                self._send(req, 404, {"error": f"unknown path {path!r}; known: {API_PREFIX}/status, "
                                               f"{API_PREFIX}/show/{{{','.join(TOPICS)}}}"})
        except Exception as e:  # noqa: BLE001 - answered, logged; the server keeps serving
            log.exception("status view failed", extra={"path": path})
            self._send(req, 500, {"error": f"{type(e).__name__}: {e}"})

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = (json.dumps(body, default=str) + "\n").encode()
        try:
            req.send_response(status)
            req.send_header("Content-Type", "application/json")
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data)
        except OSError:
            pass  # the client went away


class StatusFailed(Exception):
    """The agent answered, with an error (an unknown route, a failing view)."""

    def __init__(self, path: str, code: int, error: str):
        self.path = path
        self.code = code
        self.error = error
        super().__init__(f"agent at {path} answered HTTP {code}: {error}")


class StatusUnreachable(Exception):
    """The agent's status socket did not answer (missing, refused, timed out, not ours)."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"agent unreachable at {path}: {reason}")


def fetch(path: str, route: str, timeout: float = 5.0) -> Any:
    """GET ``route`` from the status socket at ``path``; the ``data`` of the answer."""
    if not os.path.exists(path):
        raise StatusUnreachable(path, "the socket does not exist (is the agent running on this node?)")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(f"GET {route} HTTP/1.0\r\nHost: vppagent\r\n\r\n".encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    except PermissionError:
        raise StatusUnreachable(path, "permission denied (the socket is 0600: run as root)") from None
    except socket.timeout:
        raise StatusUnreachable(path, f"no answer within {timeout:g}s") from None
    except OSError as e:
        raise StatusUnreachable(path, e.strerror or str(e)) from None
    finally:
        s.close()
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    try:
        code = int(head.split(b" ", 2)[1])
        answer = json.loads(body)
    except (IndexError, ValueError):
        raise StatusUnreachable(path, "the answer is not the agent's status protocol") from None
    if code != 200:
        raise StatusFailed(path, code, str(answer.get("error", "")))
    return answer["data"]
