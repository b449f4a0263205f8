"""Health and readiness over HTTP: ``/healthz``, ``/readyz`` and ``/metrics``.

Owns: ``Health`` (the agent's liveness heartbeat and readiness, written by
the reconciler thread, read by HTTP threads) and ``HealthServer`` (stdlib
``ThreadingHTTPServer`` in a daemon thread).

- ``/healthz``: 200 while the reconciler loop is turning (it beats at least
  every second, even idle); 503 once it has not beaten for ``stall_s`` (a
  reconciler stuck or dead: the kubelet should restart the agent).
- ``/readyz``: 200 once the first full sync is done (every source listed,
  VPP read back, the first reconcile pass applied) and while VPP is
  connected; 503 with the reason otherwise.
- ``/metrics``: the Prometheus text of the registry given (if any).

Must not touch: the reconciler's state (only what ``Health`` is told), VPP.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)


class Health:
    """Thread-safe liveness and readiness of one agent."""

    def __init__(self, *, stall_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self.stall_s = stall_s
        self._beat = clock()
        self._ready = False
        self._reason = "starting"

    def beat(self) -> None:
        with self._lock:
            self._beat = self._clock()

    def set_ready(self, ready: bool, reason: str = "") -> None:
        with self._lock:
            if ready != self._ready or reason != self._reason:
                log.info("readiness changed", extra={"ready": ready, "reason": reason})
            self._ready = ready
            self._reason = reason

    def live(self) -> tuple[bool, str]:
        with self._lock:
            age = self._clock() - self._beat
        if age > self.stall_s:
            return False, f"reconciler loop has not run for {age:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        with self._lock:
            return self._ready, self._reason or ("ready" if self._ready else "not ready")


class HealthServer:
    """Serves ``Health`` (and optionally a Prometheus registry) on ``address:port``."""

    def __init__(self, health: Health, address: str = "0.0.0.0", port: int = 0, registry: Any = None):
        self.health = health
        self.registry = registry
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server._handle(self)

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("health request: " + fmt % args)

        self._httpd = ThreadingHTTPServer((address, port), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def start(self) -> HealthServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="vppagent-health", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?", 1)[0]
        if path == "/healthz":
            ok, why = self.health.live()
            self._send(req, 200 if ok else 503, why + "\n")
        elif path == "/readyz":
            ok, why = self.health.ready()
            self._send(req, 200 if ok else 503, why + "\n")
        elif path == "/metrics" and self.registry is not None:
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
            self._send(req, 200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        else:
            self._send(req, 404, "not found\n")

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: str | bytes,
              content_type: str = "text/plain; charset=utf-8") -> None:
        data = body.encode() if isinstance(body, str) else body
        try:
            req.send_response(status)
            req.send_header("Content-Type", content_type)
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data)
        except OSError:
            pass  # the prober went away
