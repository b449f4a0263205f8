"""Posting Kubernetes Events (core/v1) about objects, without blocking the caller.

Owns: ``EventRecorder`` (a bounded queue and one daemon thread that calls
``create_namespaced_event``) and ``ObjectRef`` (the involved object). Any
module can use it to tell operators something on the object concerned.

Events are best effort, as in client-go: a failed post is logged and
dropped, never retried in a loop; when the queue is full new events are
dropped. Identical events (same object, type, reason and message) within
``dedup_window_s`` are posted once, so that a bad object seen on every
relist does not flood the API server.

Must not touch: what to report (callers decide); never put secrets (keys)
in a message.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

log = logging.getLogger(__name__)

MAX_MESSAGE = 1024  # events.k8s.io's limit; long messages are truncated, not refused


@dataclass(frozen=True)
class ObjectRef:
    """The object an Event is about (its ``involvedObject``)."""

    kind: str
    name: str
    namespace: str = ""
    uid: str = ""
    api_version: str = "v1"
    resource_version: str = ""

    @classmethod
    def from_api(cls, obj: Mapping[str, Any], *, kind: str, api_version: str) -> ObjectRef:
        """From an API object as a dict; tolerant, since it is used on invalid objects."""
        meta = obj.get("metadata") if isinstance(obj, Mapping) else None
        meta = meta if isinstance(meta, Mapping) else {}

        def s(key: str) -> str:
            v = meta.get(key)
            return v if isinstance(v, str) else ""
        return cls(kind=kind, name=s("name"), namespace=s("namespace"), uid=s("uid"),
                   api_version=api_version, resource_version=s("resourceVersion"))


@dataclass(frozen=True)
class _Pending:
    ref: ObjectRef
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class RecorderStats:
    posted: int
    suppressed: int  # duplicates within the dedup window
    dropped: int  # queue full, or recorder stopped
    failed: int  # the API refused or was unreachable


def _timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Posts Events from a background thread; ``record()`` never blocks on the network."""

    def __init__(self, api_client: client.ApiClient, *, component: str = "vppagent", host: str = "",
                 dedup_window_s: float = 600.0, max_pending: int = 256, cache_size: int = 4096,
                 request_timeout_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self._api = client.CoreV1Api(api_client)
        self.component = component
        self.host = host
        self._dedup_window_s = dedup_window_s
        self._cache_size = cache_size
        self._timeout = request_timeout_s
        self._clock = clock
        self._queue: queue.Queue[_Pending] = queue.Queue(maxsize=max_pending)
        self._lock = threading.Condition()
        self._seen: OrderedDict[tuple[Any, ...], float] = OrderedDict()
        self._in_flight = 0
        self._counts = {"posted": 0, "suppressed": 0, "dropped": 0, "failed": 0}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> EventRecorder:
        with self._lock:
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(target=self._run, name="vppagent-event-recorder",
                                                daemon=True)
                self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop posting; events still queued are dropped."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every recorded event has been posted (or failed). True if so."""
        deadline = time.monotonic() + timeout  # real time: the dedup clock may be a test's
        with self._lock:
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    @property
    def stats(self) -> RecorderStats:
        with self._lock:
            return RecorderStats(**self._counts)

    # -- recording ----------------------------------------------------------------

    def record(self, ref: ObjectRef, reason: str, message: str, *, type: str = "Warning") -> bool:  # noqa: A002
        """Queue one Event about ``ref``. False if suppressed as a duplicate or dropped."""
        message = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."
        dedup_key = (ref.kind, ref.namespace, ref.name, ref.uid, type, reason, message)
        now = self._clock()
        with self._lock:
            last = self._seen.get(dedup_key)
            if last is not None and now - last < self._dedup_window_s:
                self._counts["suppressed"] += 1
                return False
            if self._stopping.is_set():
                self._counts["dropped"] += 1
                return False
            self._seen[dedup_key] = now
            self._seen.move_to_end(dedup_key)
            while len(self._seen) > self._cache_size:
                self._seen.popitem(last=False)
            try:
                self._queue.put_nowait(_Pending(ref, type, reason, message))
            except queue.Full:
                self._counts["dropped"] += 1
                del self._seen[dedup_key]  # let a later identical event through
                return False
            self._in_flight += 1
        self.start()
        return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                ok = self._post(item)
            finally:
                with self._lock:
                    self._counts["posted" if ok else "failed"] += 1
                    self._in_flight -= 1
                    self._lock.notify_all()
        # Whatever is left will never be posted: account for it so flush() returns.
        with self._lock:
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
                self._counts["dropped"] += 1
                self._in_flight -= 1
            self._lock.notify_all()

    def _post(self, item: _Pending) -> bool:
        ref = item.ref
        namespace = ref.namespace or "default"  # cluster-scoped objects: kubelet uses "default" too
        now = _timestamp()
        involved: dict[str, Any] = {"kind": ref.kind, "name": ref.name, "apiVersion": ref.api_version}
        if ref.namespace:
            involved["namespace"] = ref.namespace
        if ref.uid:
            involved["uid"] = ref.uid
        if ref.resource_version:
            involved["resourceVersion"] = ref.resource_version
        body = {
            "metadata": {"name": f"{ref.name or 'unnamed'}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
            "involvedObject": involved,
            "reason": item.reason,
            "message": item.message,
            "type": item.type,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "reportingComponent": self.component,
            "reportingInstance": self.host or self.component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        extra = {"k8s_kind": ref.kind, "k8s_namespace": ref.namespace, "k8s_name": ref.name,
                 "event_reason": item.reason}
        try:
            self._api.create_namespaced_event(namespace, body, _request_timeout=self._timeout)
            return True
        except (ApiException, HTTPError, OSError, ValueError) as exc:
            # ValueError: the client's pydantic validation of the body.
            log.warning("could not post event: %s", exc, extra={**extra, "error": str(exc)})
            return False
