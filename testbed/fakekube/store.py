"""The fake API server's object store and event log.

Owns: the objects (plain dicts, one table per kind), the single global
resourceVersion counter (every write takes the next number, as etcd's
revision does), the event log that watches replay from, and compaction.

A test double: no admission, no defaulting beyond metadata, no validation
of specs (tests need to store invalid objects on purpose).
"""
from __future__ import annotations

import bisect
import copy
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class Resource:
    kind: str
    group_version: str  # "v1", "discovery.k8s.io/v1"
    plural: str
    namespaced: bool


RESOURCES: tuple[Resource, ...] = (
    Resource("Node", "v1", "nodes", False),
    Resource("Namespace", "v1", "namespaces", False),
    Resource("Pod", "v1", "pods", True),
    Resource("Service", "v1", "services", True),
    Resource("Event", "v1", "events", True),
    Resource("EndpointSlice", "discovery.k8s.io/v1", "endpointslices", True),
    Resource("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies", True),
)
BY_KIND = {r.kind: r for r in RESOURCES}
BY_PATH = {(r.group_version, r.plural): r for r in RESOURCES}


class StoreError(Exception):
    """A request the store refuses; ``code`` and ``reason`` become a Status."""

    def __init__(self, code: int, reason: str, message: str):
        self.code = code
        self.reason = reason
        super().__init__(message)


class Expired(StoreError):
    def __init__(self, requested: int, oldest: int):
        super().__init__(410, "Expired", f"too old resource version: {requested} ({oldest})")


@dataclass(frozen=True)
class LogEntry:
    rv: int
    kind: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]  # the object after the change (the last state for DELETED)
    prev: dict[str, Any] | None  # before the change; None for ADDED


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_of(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


class Store:
    """Objects, a global resourceVersion and an event log, under one condition variable."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.rv = 0
        self.compacted_rv = 0  # a watch from an RV below this gets 410 Gone
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {r.kind: {} for r in RESOURCES}
        self._log: list[LogEntry] = []
        self._log_rvs: list[int] = []

    # -- writes (callers need not hold the lock) ------------------------------

    def _commit(self, kind: str, etype: str, obj: dict[str, Any], prev: dict[str, Any] | None,
                record: bool) -> dict[str, Any]:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        table = self._objects[kind]
        if etype == "DELETED":
            table.pop(key_of(obj), None)
        else:
            table[key_of(obj)] = obj
        if record:
            self._log.append(LogEntry(self.rv, kind, etype, obj, prev))
            self._log_rvs.append(self.rv)
        else:
            # Changes nobody may replay: as if the log had been compacted past them.
            self.compacted_rv = self.rv
        self.cond.notify_all()
        return copy.deepcopy(obj)

    def create(self, kind: str, obj: dict[str, Any], *, record: bool = True) -> dict[str, Any]:
        res = BY_KIND[kind]
        obj = copy.deepcopy(obj)
        obj.setdefault("apiVersion", res.group_version)
        obj.setdefault("kind", kind)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise StoreError(422, "Invalid", "metadata.name: Required value")
        if res.namespaced and not meta.get("namespace"):
            raise StoreError(422, "Invalid", "metadata.namespace: Required value")
        if not res.namespaced:
            meta.pop("namespace", None)
        with self.cond:
            if key_of(obj) in self._objects[kind]:
                raise StoreError(409, "AlreadyExists", f'{res.plural} "{meta["name"]}" already exists')
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", _now())
            meta["generation"] = 1
            return self._commit(kind, "ADDED", obj, None, record)

    def replace(self, kind: str, obj: dict[str, Any], *, record: bool = True) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        res = BY_KIND[kind]
        obj.setdefault("apiVersion", res.group_version)
        obj.setdefault("kind", kind)
        with self.cond:
            prev = self._objects[kind].get(key_of(obj))
            if prev is None:
                ns, name = key_of(obj)
                raise StoreError(404, "NotFound", f'{res.plural} "{name}" not found')
            meta = obj.setdefault("metadata", {})
            for keep in ("uid", "creationTimestamp"):
                meta[keep] = prev["metadata"].get(keep)
            meta["generation"] = prev["metadata"].get("generation", 1) + 1
            return self._commit(kind, "MODIFIED", obj, prev, record)

    def update(self, kind: str, namespace: str, name: str,
               change: Callable[[dict[str, Any]], dict[str, Any]], *, record: bool = True) -> dict[str, Any]:
        """Read-modify-write one object atomically (patches go through here)."""
        with self.cond:
            cur = self._objects[kind].get((namespace, name))
            if cur is None:
                raise StoreError(404, "NotFound", f'{BY_KIND[kind].plural} "{name}" not found')
            new = change(copy.deepcopy(cur))
            new.setdefault("metadata", {})
            new["metadata"]["name"], new["metadata"]["uid"] = name, cur["metadata"]["uid"]
            if namespace:
                new["metadata"]["namespace"] = namespace
            return self.replace(kind, new, record=record)

    def delete(self, kind: str, namespace: str, name: str, *, record: bool = True) -> dict[str, Any]:
        with self.cond:
            cur = self._objects[kind].get((namespace, name))
            if cur is None:
                raise StoreError(404, "NotFound", f'{BY_KIND[kind].plural} "{name}" not found')
            gone = copy.deepcopy(cur)
            return self._commit(kind, "DELETED", gone, cur, record)

    def compact(self) -> int:
        """Forget the whole event log: watches from any older RV now get 410."""
        with self.cond:
            self.compacted_rv = self.rv
            self._log.clear()
            self._log_rvs.clear()
            self.cond.notify_all()
            return self.rv

    # -- reads -----------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.cond:
            obj = self._objects[kind].get((namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, kind: str, keep: Callable[[dict[str, Any]], bool] = lambda o: True
             ) -> tuple[list[dict[str, Any]], int]:
        """Matching objects, sorted by namespace/name, and the RV they are current at."""
        with self.cond:
            items = [copy.deepcopy(o) for k, o in sorted(self._objects[kind].items()) if keep(o)]
            return items, self.rv

    def entries_after(self, rv: int, kinds: Iterable[str]) -> list[LogEntry]:
        """Log entries newer than ``rv`` for ``kinds``; caller holds ``cond``. Raises Expired."""
        if rv < self.compacted_rv:
            raise Expired(rv, self.compacted_rv)
        wanted = set(kinds)
        start = bisect.bisect_right(self._log_rvs, rv)
        return [e for e in self._log[start:] if e.kind in wanted]
