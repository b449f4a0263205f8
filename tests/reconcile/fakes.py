"""An in-memory stand-in for VPP and two toy kinds, for the engine's unit tests.

``FakeVpp`` keeps objects by name and counts calls like ``VppClient.calls``;
``Thing`` values may reference another thing (a dependency), so ordering is
observable in ``FakeVpp.log``. ``ThingDescriptor`` runs one call per
operation; ``BatchThingDescriptor`` the same through ``bulk``.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Iterable

from vppagent.reconcile import Found, Key, Resolver
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppApiError, VppDisconnectedError
from vppagent.vpp.retvals import Retval


class Clock:
    """A clock the test moves (``now``), for retry and backoff timing."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Thing:
    name: str
    data: int = 0
    ref: str | None = None  # the name of a thing this one needs
    fixed: int = 0  # changing it needs a delete + create


class FakeVpp:
    unavailable = VppClient.unavailable

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.store: dict[str, tuple[int, int, str | None, int]] = {}  # name -> (handle, data, ref, fixed)
        self.log: list[tuple[str, str]] = []
        self.reject: dict[str, int] = {}  # name -> retval to fail every op on it with
        self.down = False
        self._next = 100

    def op(self, op: str, name: str, data: int = 0, ref: str | None = None, fixed: int = 0) -> int:
        self.calls[f"thing_{op}"] += 1
        if self.down:
            raise VppDisconnectedError("fake VPP is down")
        if name in self.reject:
            raise VppApiError(f"thing_{op}", self.reject[name], {"name": name})
        self.log.append((op, name))
        if op == "delete":
            self.store.pop(name, None)
            return 0
        if ref is not None and ref not in self.store:
            raise VppApiError(f"thing_{op}", int(Retval.NO_SUCH_ENTRY), {"ref": ref})
        handle = self.store[name][0] if name in self.store else self._alloc()
        self.store[name] = (handle, data, ref, fixed)
        return handle

    def _alloc(self) -> int:
        self._next += 1
        return self._next

    def bulk(self, requests: Iterable[tuple[str, dict]], *, check: bool = True) -> list[Any]:
        replies = []
        for name, fields in requests:
            try:
                h = self.op(name.removeprefix("thing_"), **fields)
                replies.append(SimpleNamespace(retval=0, handle=h))
            except VppApiError as e:
                replies.append(SimpleNamespace(retval=e.retval, handle=0))
        return replies

    def dump(self) -> list[tuple[str, tuple[int, int, str | None, int]]]:
        self.calls["thing_dump"] += 1
        if self.down:
            raise VppDisconnectedError("fake VPP is down")
        return list(self.store.items())


class ThingDescriptor:
    kind = "thing"
    retrieve_after: tuple[str, ...] = ()

    def key(self, value: Thing) -> str:
        return value.name

    def dependencies(self, value: Thing) -> Iterable[Key]:
        return [Key("thing", value.ref)] if value.ref else []

    def create(self, vpp: FakeVpp, value: Thing, r: Resolver) -> int:
        return vpp.op("create", value.name, value.data, value.ref, value.fixed)

    def can_update(self, old: Thing, new: Thing) -> bool:
        return old.fixed == new.fixed and old.ref == new.ref

    def update(self, vpp: FakeVpp, old: Thing, handle: Any, new: Thing, r: Resolver) -> int:
        return vpp.op("update", new.name, new.data, new.ref, new.fixed)

    def delete(self, vpp: FakeVpp, value: Thing, handle: Any, r: Resolver) -> None:
        vpp.op("delete", value.name)

    def retrieve(self, vpp: FakeVpp, r: Resolver) -> Iterable[Found[Thing]]:
        return [Found(Thing(name, data, ref, fixed), handle) for name, (handle, data, ref, fixed) in vpp.dump()]

    def is_retriable(self, error: Exception) -> bool:
        return not (isinstance(error, VppApiError) and error.retval == Retval.INVALID_VALUE)


class BatchThingDescriptor(ThingDescriptor):
    def create_request(self, value: Thing, r: Resolver):
        return ("thing_create", {"name": value.name, "data": value.data, "ref": value.ref, "fixed": value.fixed})

    def update_request(self, old: Thing, handle: Any, new: Thing, r: Resolver):
        return ("thing_update", {"name": new.name, "data": new.data, "ref": new.ref, "fixed": new.fixed})

    def delete_request(self, value: Thing, handle: Any, r: Resolver):
        return ("thing_delete", {"name": value.name})

    def finish(self, op: str, request: Any, reply: Any, old_handle: Any) -> Any:
        if reply.retval != 0:
            raise VppApiError(request[0], reply.retval, {"name": request[1]["name"]})
        return None if op == "delete" else reply.handle
