"""A fake Kubernetes API server: real HTTP on 127.0.0.1, for the real ``kubernetes`` client.

A test double. It speaks the REST paths the official client uses for Nodes,
Namespaces, Pods, Services, Events (core/v1), EndpointSlices
(discovery.k8s.io/v1) and NetworkPolicies (networking.k8s.io/v1):

- list (``resourceVersion`` in the list metadata, ``labelSelector``,
  ``fieldSelector``, ``limit``/``continue`` served from a snapshot);
- watch (``?watch=true``): chunked, one JSON event per line, replayed from
  the event log after ``resourceVersion``, BOOKMARKs when
  ``allowWatchBookmarks``, closed after ``timeoutSeconds``; objects that start
  or stop matching a selector arrive as ADDED / DELETED, as on a real server;
- get, create (POST), replace (PUT), patch (merge, strategic merge treated as
  merge, JSON patch), delete.

Tests drive it through ``FakeKube``: add/modify/delete objects directly, read
what the agent wrote (``events()``, ``get()``), look at every request
(``requests()``), and inject faults (see the "faults" section of FakeKube).

What it leaves out: authentication, admission and defaulting, field
validation, protobuf/CBOR, server-side apply, subresources other than
``/status`` (which is treated as the object itself).
"""
from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .handler import JSON, REASONS, Handler, HTTPServer, RequestRecord, Route, status_body
from .patch import PatchError, json_patch, merge_patch
from .selectors import parse_field_selector, parse_label_selector
from .store import Expired, LogEntry, Store, StoreError


@dataclass
class _Fault:
    remaining: int
    status: int
    match: Callable[[str, str, dict[str, str]], bool]


@dataclass
class _Watch:
    """One open watch stream, so that faults can end it."""

    conn: socket.socket
    closing: bool = False
    abrupt: bool = False
    bookmark_now: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class FakeKube:
    """The fake API server and its test controls.

    Start with ``FakeKube().start()`` (or as a context manager); point a
    client at ``url``, ``configuration()`` or ``write_kubeconfig(path)``.
    """

    def __init__(self, *, bookmark_interval: float = 1.0, max_watch_seconds: float = 600.0):
        self.store = Store()
        self.bookmark_interval = bookmark_interval
        self.max_watch_seconds = max_watch_seconds
        self.port = 0
        self._httpd: HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._watches: list[_Watch] = []
        self._requests: list[RequestRecord] = []
        self._faults: list[_Fault] = []
        self._watch_errors: list[int] = []
        self._watches_released = threading.Event()
        self._watches_released.set()  # cleared by watches_held()
        self._dropping = False
        self._snapshots: dict[str, tuple[list[dict[str, Any]], int]] = {}

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> FakeKube:
        self._listen()
        return self

    def stop(self) -> None:
        self._watches_released.set()
        self._close_listener()
        self._drop_all_connections()
        # Handler threads exit once their connection is gone; wait so that a
        # test leaves no thread of ours behind.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self._lock:
                if not self._conns:
                    break
            time.sleep(0.01)

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def configuration(self) -> Any:
        """A ``kubernetes.client.Configuration`` pointing at this server."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        return cfg

    def write_kubeconfig(self, path: str | Path, *, context: str = "fake") -> Path:
        """Write a kubeconfig for this server (JSON is valid YAML) and return its path."""
        path = Path(path)
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": "fake-token"}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        }))
        return path

    def _listen(self) -> None:
        self._httpd = HTTPServer(("127.0.0.1", self.port), self)
        self.port = self._httpd.server_address[1]
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"fakekube-{self.port}", daemon=True)
        self._serve_thread.start()

    def _close_listener(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5)
            self._serve_thread = None

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _drop_all_connections(self) -> None:
        self.disconnect_watches()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- objects (plain dicts, as the API sends them) -----------------------------

    def add(self, obj: dict[str, Any], *, silently: bool = False) -> dict[str, Any]:
        """Create an object; its ``kind`` field says which table. Returns the stored copy.

        ``silently``: no watch event is logged and the log is compacted past the
        change, so that only a relist can see it (watchers get 410).
        """
        return self.store.create(obj["kind"], obj, record=not silently)

    def modify(self, obj: dict[str, Any], *, silently: bool = False) -> dict[str, Any]:
        """Replace an existing object (matched by kind, namespace, name)."""
        return self.store.replace(obj["kind"], obj, record=not silently)

    def apply(self, obj: dict[str, Any], *, silently: bool = False) -> dict[str, Any]:
        """Create or replace."""
        meta = obj.get("metadata", {})
        if self.store.get(obj["kind"], meta.get("namespace", ""), meta["name"]) is None:
            return self.add(obj, silently=silently)
        return self.modify(obj, silently=silently)

    def patch(self, kind: str, name: str, patch: dict[str, Any], namespace: str = "",
              *, silently: bool = False) -> dict[str, Any]:
        """Merge-patch an object (RFC 7386)."""
        return self.store.update(kind, namespace, name, lambda cur: merge_patch(cur, patch),
                                 record=not silently)

    def delete(self, kind: str, name: str, namespace: str = "", *, silently: bool = False) -> dict[str, Any]:
        return self.store.delete(kind, namespace, name, record=not silently)

    def get(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        return self.store.get(kind, namespace, name)

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.store.list(kind, lambda o: namespace is None
                               or (o.get("metadata") or {}).get("namespace") == namespace)[0]

    def events(self, *, reason: str | None = None) -> list[dict[str, Any]]:
        """core/v1 Events clients created, optionally only those with ``reason``."""
        return [e for e in self.list("Event") if reason is None or e.get("reason") == reason]

    @property
    def resource_version(self) -> int:
        return self.store.rv

    # -- the request log ------------------------------------------------------------

    def _record(self, method: str, path: str, query: dict[str, str], status: int) -> None:
        with self._lock:
            self._requests.append(RequestRecord(method, path, dict(query), status, time.monotonic()))

    def requests(self, *, path: str | None = None, watch: bool | None = None,
                 since: float | None = None) -> list[RequestRecord]:
        """Requests seen so far, optionally filtered by exact path, watch or not, and time."""
        with self._lock:
            out = list(self._requests)
        return [r for r in out
                if (path is None or r.path == path)
                and (watch is None or r.is_watch == watch)
                and (since is None or r.at >= since)]

    # -- faults ------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 500, *, watch: bool | None = None,
                  path: str | None = None, method: str | None = None,
                  when: Callable[[str, str, dict[str, str]], bool] | None = None) -> None:
        """Answer the next ``n`` matching requests with ``status`` and a Status body.

        ``watch`` True/False restricts to watch/non-watch requests; ``status=410``
        with ``watch=True`` is a watch refused with HTTP 410 (an ApiException).
        ``when(method, path, query)`` narrows further (e.g. only ``continue`` pages).
        """
        def match(m: str, p: str, q: dict[str, str]) -> bool:
            is_watch = q.get("watch") in ("true", "1")
            return ((watch is None or is_watch == watch) and (path is None or p == path)
                    and (method is None or m == method) and (when is None or when(m, p, q)))
        with self._lock:
            self._faults.append(_Fault(n, status, match))

    def _fault_for(self, method: str, path: str, query: dict[str, str]) -> int:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.match(method, path, query):
                    fault.remaining -= 1
                    return fault.status
        return 0

    def expire_next_watches(self, n: int = 1) -> None:
        """The next ``n`` watches get an ERROR event carrying a 410 Status, then end."""
        self.error_next_watches(n, code=410)

    def error_next_watches(self, n: int = 1, *, code: int = 410) -> None:
        """The next ``n`` watches answer 200, send one ERROR event with a ``code`` Status, and end."""
        with self._lock:
            self._watch_errors.extend([code] * n)

    def compact(self) -> int:
        """Drop the event log; a watch from any RV before now gets 410. Returns the RV."""
        return self.store.compact()

    def disconnect_watches(self, *, abrupt: bool = True) -> int:
        """End every open watch: ``abrupt`` resets the TCP connection mid-stream,
        otherwise the chunked stream is ended cleanly. Returns how many were open."""
        with self._lock:
            watches = [w for w in self._watches if not w.done.is_set()]
        for w in watches:
            w.abrupt, w.closing = abrupt, True
            if abrupt:
                try:
                    w.conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        with self.store.cond:
            self.store.cond.notify_all()
        for w in watches:
            w.done.wait(timeout=2)
        return len(watches)

    def open_watches(self) -> int:
        with self._lock:
            return sum(1 for w in self._watches if not w.done.is_set())

    def send_bookmarks(self) -> None:
        """Make every open watch that asked for bookmarks send one now."""
        with self._lock:
            for w in self._watches:
                w.bookmark_now = True
        with self.store.cond:
            self.store.cond.notify_all()

    @contextmanager
    def watches_held(self) -> Iterator[None]:
        """While inside, new watch requests wait (unanswered) until the block exits."""
        self._watches_released.clear()
        try:
            yield
        finally:
            self._watches_released.set()

    def go_down(self, *, refuse: bool = True) -> None:
        """Become unavailable: drop every connection, then either stop listening
        (``refuse``: clients get ECONNREFUSED) or keep accepting and hang up at once
        (each attempt is then logged as a "CONNECT" request, so tests can count them)."""
        if refuse:
            self._close_listener()
        else:
            self._dropping = True
        self._drop_all_connections()

    def come_up(self) -> None:
        """Serve again, on the same port."""
        self._dropping = False
        if self._httpd is None:
            self._listen()

    # -- request handling -------------------------------------------------------------

    def _serve(self, method: str, route: Route, query: dict[str, str], body: bytes,
               content_type: str) -> tuple[int, Any]:
        res, ns = route.resource, route.namespace or ""
        if route.name is None:
            if method == "GET":
                return 200, self._list(route, query)
            if method == "POST":
                obj = json.loads(body or b"{}")
                obj.setdefault("kind", res.kind)
                if res.namespaced:
                    if not ns:
                        raise StoreError(405, "MethodNotAllowed", "create needs a namespace in the path")
                    obj.setdefault("metadata", {})["namespace"] = ns
                return 201, self.store.create(res.kind, obj)
            raise StoreError(405, "MethodNotAllowed", f"{method} on a collection")
        if method == "GET":
            obj = self.store.get(res.kind, ns, route.name)
            if obj is None:
                raise StoreError(404, "NotFound", f'{res.plural} "{route.name}" not found')
            return 200, obj
        if method == "PUT":
            obj = json.loads(body or b"{}")
            obj.setdefault("metadata", {}).update({"name": route.name, **({"namespace": ns} if ns else {})})
            return 200, self.store.replace(res.kind, obj)
        if method == "PATCH":
            patch = json.loads(body or b"null")
            if "json-patch" in content_type:
                if not isinstance(patch, list):
                    raise StoreError(400, "BadRequest", "a JSON patch must be a list")
                change = lambda cur: json_patch(cur, patch)  # noqa: E731
            elif "merge-patch" in content_type:
                change = lambda cur: merge_patch(cur, patch)  # noqa: E731
            else:
                raise StoreError(415, "UnsupportedMediaType", f"unsupported patch type {content_type!r}")
            try:
                return 200, self.store.update(res.kind, ns, route.name, change)
            except PatchError as exc:
                raise StoreError(422, "Invalid", str(exc)) from exc
        if method == "DELETE":
            return 200, self.store.delete(res.kind, ns, route.name)
        raise StoreError(405, "MethodNotAllowed", method)

    def _selector(self, route: Route, query: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"))
        ns = route.namespace

        def keep(obj: dict[str, Any]) -> bool:
            if ns is not None and (obj.get("metadata") or {}).get("namespace") != ns:
                return False
            return labels(obj) and fields(obj)
        return keep

    def _list(self, route: Route, query: dict[str, str]) -> dict[str, Any]:
        res = route.resource
        token = query.get("continue")
        if token:
            with self._lock:
                snap = self._snapshots.get(token)
            if snap is None:
                raise StoreError(410, "Expired", "the provided continue parameter is too old")
            items, rv = snap
        else:
            items, rv = self.store.list(res.kind, self._selector(route, query))
        limit = int(query.get("limit") or 0)
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit and len(items) > limit:
            rest_token = base64.urlsafe_b64encode(f"{rv}:{time.monotonic_ns()}".encode()).decode()
            with self._lock:
                self._snapshots[rest_token] = (items[limit:], rv)
            meta["continue"] = rest_token
            items = items[:limit]
        return {"apiVersion": res.group_version, "kind": f"{res.kind}List", "metadata": meta, "items": items}

    def _serve_watch(self, handler: Handler, route: Route, query: dict[str, str]) -> None:
        res = route.resource
        keep = self._selector(route, query)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        timeout = float(query.get("timeoutSeconds") or self.max_watch_seconds)
        deadline = time.monotonic() + min(timeout, self.max_watch_seconds)
        watch = _Watch(handler.connection)
        handler.send_response(200)
        handler.send_header("Content-Type", JSON)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def send(etype: str, obj: dict[str, Any]) -> None:
            handler.write_chunk(json.dumps({"type": etype, "object": obj}).encode() + b"\n")

        with self._lock:
            self._watches.append(watch)
            error = self._watch_errors.pop(0) if self._watch_errors else 0
        try:
            if error:
                send("ERROR", status_body(error, REASONS.get(error, "InternalError"), "injected watch error"))
                return
            start_rv = query.get("resourceVersion") or "0"
            if start_rv == "0":
                # "Any" RV: synthetic ADDED for the current state, then follow, as the real server does.
                items, sent_rv = self.store.list(res.kind, keep)
                for obj in items:
                    send("ADDED", obj)
            else:
                sent_rv = int(start_rv)
            next_bookmark = time.monotonic() + self.bookmark_interval
            while not watch.closing:
                with self.store.cond:
                    try:
                        entries = self.store.entries_after(sent_rv, [res.kind])
                    except Expired as exc:
                        send("ERROR", status_body(410, "Expired", str(exc)))
                        return
                    scan_rv = self.store.rv
                    now = time.monotonic()
                    bookmark_due = bookmarks and (watch.bookmark_now or now >= next_bookmark)
                    if not entries and not bookmark_due:
                        if now >= deadline or watch.closing:
                            break
                        wake = min(deadline, next_bookmark) if bookmarks else deadline
                        self.store.cond.wait(timeout=max(0.0, wake - now))
                        continue
                for entry in entries:
                    out = self._filtered(entry, keep)
                    if out is not None:
                        send(*out)
                sent_rv = scan_rv
                if bookmark_due:
                    watch.bookmark_now = False
                    send("BOOKMARK", {"kind": res.kind, "apiVersion": res.group_version,
                                      "metadata": {"resourceVersion": str(sent_rv)}})
                    next_bookmark = time.monotonic() + self.bookmark_interval
        except OSError:
            watch.abrupt = True  # the client went away, or a fault cut the connection
        finally:
            try:
                if watch.abrupt:
                    handler.close_connection = True
                else:
                    handler.wfile.write(b"0\r\n\r\n")  # end of the chunked stream
                    handler.wfile.flush()
            except OSError:
                handler.close_connection = True
            watch.done.set()
            with self._lock:
                self._watches.remove(watch)

    @staticmethod
    def _filtered(entry: LogEntry, keep: Callable[[dict[str, Any]], bool]) -> tuple[str, dict[str, Any]] | None:
        """What a watcher with selector ``keep`` sees of one change (None: nothing)."""
        now_in = entry.type != "DELETED" and keep(entry.obj)
        was_in = keep(entry.prev) if entry.prev is not None else False
        if entry.type == "DELETED":
            return ("DELETED", entry.obj) if was_in else None
        if now_in and was_in:
            return "MODIFIED", entry.obj
        if now_in:
            return "ADDED", entry.obj
        if was_in:
            return "DELETED", entry.obj  # it left the selection
        return None


__all__ = ["FakeKube", "RequestRecord", "status_body"]
