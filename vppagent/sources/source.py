"""One Kubernetes kind, listed and watched in its own thread, as model events on a queue.

Owns: the list/watch loop of one kind (``KubeSource``): resourceVersion
tracking (from objects and BOOKMARKs), relisting on 410 Gone with only the
difference emitted, exponential backoff with jitter on API errors, skipping
invalid objects (structured log line + a Kubernetes Event), and a prompt
``stop()``. It keeps the last valid version of each object it emitted, which
is what the relist diff is computed against.

Must not touch: VPP, the reconciler, the desired state beyond emitting
events. The queue is the agent's: sources only ``put`` onto it.

Why not ``kubernetes.watch.Watch``: its ``stream(deserialize=False)`` fails
on ERROR events (it looks up ``raw_object``, which only deserialized events
have), deserializing into the client's pydantic models would reject whole
lists over one odd object, and its ``stop()`` cannot interrupt a watch that
has not yet handed over its response. So this module calls the generated
``list_*`` functions with ``watch=True`` itself and reads the stream with the
client's own line splitter.
"""
from __future__ import annotations

import json
import logging
import queue
import random
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from urllib3.exceptions import HTTPError

from vppagent.model.k8s import InvalidObject, K8sObject, ObjectKey

from .backoff import Backoff, BackoffPolicy
from .errors import WatchExpired, WatchFailed
from vppagent.model.events import Delete, SourceEvent, Synced, Upsert
from .kinds import KindSpec
from .recorder import EventRecorder, ObjectRef

log = logging.getLogger(__name__)

INVALID_REASON = "InvalidObject"


@dataclass(frozen=True)
class SourceOptions:
    """Timeouts and limits; the defaults suit a production cluster, tests shrink them."""

    watch_timeout_s: int = 300  # server-side timeoutSeconds of one watch request
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0  # list requests; a watch waits watch_timeout_s longer
    page_size: int = 500  # list in pages, so a big cluster is not one huge response
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    # A watch that ends sooner than this without any event is treated as a
    # failure (backoff), so that a server closing streams at once cannot spin us.
    min_watch_s: float = 1.0


@dataclass(frozen=True)
class SourceStats:
    lists: int = 0  # complete (re)lists
    watches: int = 0  # watch streams opened
    expired: int = 0  # 410 Gone seen
    errors: int = 0  # failures that led to a backoff pause
    invalid: int = 0  # objects skipped as invalid
    emitted: int = 0  # events put on the queue


class _Stopping(Exception):
    """Internal: unwind the loop because stop() was called."""


class KubeSource:
    """List+watch one kind; push Upsert/Delete/Synced onto ``out``.

    ``start()`` runs the loop in a daemon thread; ``stop()`` ends it promptly
    (an open watch is interrupted, a backoff pause is cut short).
    """

    def __init__(self, spec: KindSpec, api_client: client.ApiClient, out: queue.Queue[SourceEvent], *,
                 name: str | None = None, field_selector: str | None = None,
                 label_selector: str | None = None, recorder: EventRecorder | None = None,
                 options: SourceOptions | None = None, rng: random.Random | None = None):
        self.spec = spec
        self.name = name or spec.plural
        self.options = options or SourceOptions()
        self._list_fn = spec.list_function(api_client)
        self._selectors = {k: v for k, v in (("field_selector", field_selector),
                                              ("label_selector", label_selector)) if v}
        self._out = out
        self._recorder = recorder
        self._rng = rng or random.Random()
        self._rv: str | None = None
        self._known: dict[ObjectKey, K8sObject] = {}
        self._invalid: dict[ObjectKey, str] = {}  # key -> last reported problem, to log it once
        self._lock = threading.Lock()
        self._resp: Any = None  # the open watch response, for stop() to interrupt
        self._stopping = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None
        self._stats: dict[str, int] = dict.fromkeys(SourceStats.__dataclass_fields__, 0)
        self._log_extra = {"source": self.name, "k8s_kind": spec.kind}
        self._progress = False  # the current list/watch round got at least one event

    # -- public ------------------------------------------------------------------

    def start(self) -> KubeSource:
        if self._thread is not None:
            raise RuntimeError(f"source {self.name} already started")
        self._thread = threading.Thread(target=self._run, name=f"vppagent-source-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the thread to end and wait up to ``timeout``; True if it has ended."""
        with self._lock:
            self._stopping.set()
            resp = self._resp
        if resp is not None:
            _interrupt(resp)
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    @property
    def resource_version(self) -> str | None:
        """The RV a watch would resume from now (None: the next step is a relist)."""
        return self._rv

    @property
    def stats(self) -> SourceStats:
        with self._lock:
            return SourceStats(**self._stats)

    def snapshot(self) -> dict[ObjectKey, K8sObject]:
        """What this source has emitted and not deleted, by key."""
        with self._lock:
            return dict(self._known)

    # -- the loop ------------------------------------------------------------------

    def _count(self, stat: str, n: int = 1) -> None:
        with self._lock:
            self._stats[stat] += n

    def _run(self) -> None:
        backoff = Backoff(self.options.backoff, self._rng)
        expired_streak = 0
        while not self._stopping.is_set():
            self._progress = False
            try:
                if self._rv is None:
                    self._relist()
                healthy = self._watch()
                # Only watch events reset the backoff, not a successful list: a
                # server that lists but cannot watch would otherwise be hammered.
                if self._progress:
                    backoff.reset()
                    expired_streak = 0
                if not healthy:
                    self._pause(backoff, "watch ended at once without events", None)
            except _Stopping:
                break
            except WatchExpired as exc:
                if self._progress:
                    backoff.reset()
                    expired_streak = 0
                self._count("expired")
                log.info("%s: %s; relisting", self.name, exc,
                         extra={**self._log_extra, "resource_version": exc.resource_version})
                self._rv = None
                expired_streak += 1
                # One 410 is routine; a second in a row with no progress between
                # means relisting is not helping, so slow down.
                if expired_streak > 1:
                    self._pause(backoff, "repeated 410 Gone", exc)
            except Exception as exc:  # noqa: BLE001 - any failure: keep the source alive, back off
                if self._stopping.is_set():
                    break
                if self._progress:
                    backoff.reset()
                self._pause(backoff, _describe(exc), exc)
        log.debug("%s: stopped", self.name, extra=self._log_extra)

    def _pause(self, backoff: Backoff, why: str, exc: BaseException | None) -> None:
        delay = backoff.next_delay()
        self._count("errors")
        extra = {**self._log_extra, "delay_s": round(delay, 3), "failures": backoff.failures, "error": why}
        if isinstance(exc, ApiException) and exc.status in (401, 403, 404):
            # Credentials, RBAC or a missing API group: retrying alone will not fix it.
            log.error("%s: %s; needs an operator; retrying in %.2fs", self.name, why, delay, extra=extra)
        elif exc is None or isinstance(exc, (ApiException, HTTPError, OSError, WatchFailed, WatchExpired)):
            log.warning("%s: %s; retrying in %.2fs", self.name, why, delay, extra=extra)
        else:
            log.error("%s: unexpected error; retrying in %.2fs", self.name, delay, exc_info=exc, extra=extra)
        self._stopping.wait(delay)

    # -- list ----------------------------------------------------------------------

    def _request_timeout(self, extra_read: float = 0.0) -> tuple[float, float]:
        return (self.options.connect_timeout_s, self.options.read_timeout_s + extra_read)

    def _call(self, **kwargs: Any) -> Any:
        try:
            return self._list_fn(_preload_content=False, **self._selectors, **kwargs)
        except ApiException as exc:
            if exc.status == 410:
                raise WatchExpired(self.name, kwargs.get("resource_version"), str(exc.reason or "")) from exc
            raise

    def _open(self, **kwargs: Any) -> Any:
        """Send one request; register its response so that stop() can interrupt the read."""
        resp = self._call(**kwargs)
        # stop() sets the flag before it looks at _resp, both under the lock:
        # either it sees this response and interrupts it, or we see the flag.
        with self._lock:
            stopping = self._stopping.is_set()
            if not stopping:
                self._resp = resp
        if stopping:
            _close(resp)
            raise _Stopping
        return resp

    def _release(self, resp: Any, *, reuse: bool) -> None:
        with self._lock:
            self._resp = None
        if reuse:
            resp.release_conn()  # body fully read: the connection goes back to the pool
        else:
            _close(resp)

    def _list_all(self) -> tuple[list[Any], str]:
        items: list[Any] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": self.options.page_size,
                                      "_request_timeout": self._request_timeout()}
            if token:
                kwargs["_continue"] = token
            resp = self._open(**kwargs)
            try:
                data = resp.data
            except BaseException:
                self._release(resp, reuse=False)
                raise
            self._release(resp, reuse=True)
            try:
                body = json.loads(data)
            except ValueError as exc:
                raise WatchFailed(self.name, resp.status, f"list response is not JSON: {exc}") from exc
            if not isinstance(body, Mapping) or not isinstance(body.get("items", []), (list, type(None))):
                raise WatchFailed(self.name, resp.status, "list response is not a list object")
            items.extend(body.get("items") or [])
            meta = body.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                rv = meta.get("resourceVersion")
                if not rv:
                    raise WatchFailed(self.name, resp.status, "list response has no resourceVersion")
                return items, str(rv)
            if self._stopping.is_set():
                raise _Stopping

    def _relist(self) -> None:
        items, rv = self._list_all()
        fresh: dict[ObjectKey, K8sObject] = {}
        listed: set[ObjectKey] = set()
        for raw in items:
            key = self._key_of(raw)
            listed.add(key)
            obj = self._convert(raw, key)
            if obj is not None:
                fresh[obj.key] = obj
            elif key in self._known:
                fresh[key] = self._known[key]  # invalid now: keep serving the last valid version
        with self._lock:
            old, self._known = self._known, fresh
        self._invalid = {k: v for k, v in self._invalid.items() if k in listed}
        # Deletes before upserts: a new pod may reuse the IP of one deleted while
        # we were not watching, and the consumer must see the old one go first.
        for key in sorted(k for k in old if k not in fresh):
            self._emit(Delete(key, old[key], self.name))
        for key, obj in fresh.items():
            if old.get(key) != obj:
                self._emit(Upsert(obj, self.name))
        self._rv = rv
        self._count("lists")
        log.info("%s: listed %d objects at resourceVersion %s", self.name, len(items), rv,
                 extra={**self._log_extra, "resource_version": rv, "objects": len(items)})
        if not self._synced.is_set():
            self._emit(Synced(self.spec.kind, self.name))
            self._synced.set()

    # -- watch ---------------------------------------------------------------------

    def _watch(self) -> bool:
        """Follow one watch stream until it ends; False if it ended at once with nothing."""
        timeout_s = self.options.watch_timeout_s
        started = time.monotonic()
        resp = self._open(watch=True, resource_version=self._rv, allow_watch_bookmarks=True,
                          timeout_seconds=timeout_s, _request_timeout=self._request_timeout(timeout_s))
        self._count("watches")
        try:
            for line in iter_resp_lines(resp):
                if self._stopping.is_set():
                    raise _Stopping
                if line:
                    self._handle(line)
        finally:
            self._release(resp, reuse=False)  # a stream may end mid-way: never pool it
        if self._stopping.is_set():
            raise _Stopping
        return self._progress or time.monotonic() - started >= self.options.min_watch_s

    def _handle(self, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise WatchFailed(self.name, None, f"undecodable watch event: {exc}") from exc
        etype = event.get("type") if isinstance(event, Mapping) else None
        obj = event.get("object") if isinstance(event, Mapping) else None
        if not isinstance(obj, Mapping):
            raise WatchFailed(self.name, None, f"watch event without an object: {line[:120]!r}")
        if etype == "ERROR":
            if obj.get("code") == 410:
                raise WatchExpired(self.name, self._rv, str(obj.get("message") or ""))
            raise WatchFailed(self.name, obj.get("code"), f"{obj.get('reason')}: {obj.get('message')}")
        self._progress = True  # only real events: an ERROR must not reset the backoff
        meta = obj.get("metadata")
        rv = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
        if etype in ("ADDED", "MODIFIED"):
            self._upsert(obj)
        elif etype == "DELETED":
            self._delete(obj)
        elif etype != "BOOKMARK":
            log.warning("%s: ignoring watch event of type %r", self.name, etype, extra=self._log_extra)
        if isinstance(rv, str) and rv:
            self._rv = rv

    def _upsert(self, raw: Mapping[str, Any]) -> None:
        key = self._key_of(raw)
        obj = self._convert(raw, key)
        if obj is None or self._known.get(obj.key) == obj:
            return  # invalid (reported), or a change the model does not see (status heartbeat)
        with self._lock:
            self._known[obj.key] = obj
        self._emit(Upsert(obj, self.name))

    def _delete(self, raw: Mapping[str, Any]) -> None:
        key = self._key_of(raw)
        self._invalid.pop(key, None)
        with self._lock:
            last = self._known.pop(key, None)
        if last is not None:
            self._emit(Delete(key, last, self.name))

    # -- helpers -------------------------------------------------------------------

    def _key_of(self, raw: Mapping[str, Any]) -> ObjectKey:
        meta = raw.get("metadata") if isinstance(raw, Mapping) else None
        meta = meta if isinstance(meta, Mapping) else {}
        ns = meta.get("namespace") if self.spec.namespaced else ""
        return ObjectKey(self.spec.kind, ns if isinstance(ns, str) else "", str(meta.get("name") or ""))

    def _convert(self, raw: Mapping[str, Any], key: ObjectKey) -> K8sObject | None:
        try:
            obj = self.spec.convert(raw)
        except InvalidObject as exc:
            self._report_invalid(raw, key, exc)
            return None
        self._invalid.pop(key, None)
        return obj

    def _report_invalid(self, raw: Mapping[str, Any], key: ObjectKey, exc: InvalidObject) -> None:
        self._count("invalid")
        problem = f"{exc.field}: {exc.reason}"
        repeat = self._invalid.get(key) == problem
        self._invalid[key] = problem
        # Once per distinct problem at warning level: relists and status updates
        # of the same bad object would otherwise repeat the line forever.
        log.log(logging.DEBUG if repeat else logging.WARNING,
                "%s: skipping invalid %s: %s", self.name, key, problem,
                extra={**self._log_extra, "k8s_namespace": exc.namespace, "k8s_name": exc.name,
                       "invalid_field": exc.field, "invalid_reason": exc.reason})
        if self._recorder is not None:
            self._recorder.record(
                ObjectRef.from_api(raw, kind=self.spec.kind, api_version=self.spec.api_version),
                INVALID_REASON, f"vppagent ignores this {exc.kind}: {problem}")

    def _emit(self, event: SourceEvent) -> None:
        # The queue is normally unbounded; if the agent bounds it, wait for room
        # but stay stoppable.
        while True:
            try:
                self._out.put(event, timeout=0.2)
                break
            except queue.Full:
                if self._stopping.is_set():
                    raise _Stopping from None
        self._count("emitted")


def _interrupt(resp: Any) -> None:
    """Unblock a thread reading ``resp`` (from another thread): shut the socket down."""
    try:
        resp.shutdown()
        return
    except Exception:  # noqa: BLE001 - older urllib3, or already released: fall back
        pass
    sock = getattr(getattr(resp, "connection", None), "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _close(resp: Any) -> None:
    try:
        resp.close()
        resp.release_conn()
    except Exception:  # noqa: BLE001 - closing a broken stream may raise; nothing to do
        pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"API error {exc.status} {exc.reason or ''}".strip()
    if isinstance(exc, (HTTPError, OSError)):
        return f"API server unreachable: {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"
