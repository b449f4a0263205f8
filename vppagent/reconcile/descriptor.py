"""The contract between the reconciler and one kind of VPP object.

Owns: ``Key`` (the identity of a desired or applied object), the
``Descriptor`` protocol every kind implements and ``DescriptorBase``, its
defaults, the optional
``BatchDescriptor`` extension for kinds whose operations are single VPP
requests that can be pipelined, and ``Resolver`` (what a descriptor may ask
the reconciler about other objects: their handles, or which object a handle
belongs to).

Must not touch: the reconciler's state (descriptors get a read-only
``Resolver``), Kubernetes objects, the queue. A descriptor is the only code
that turns a value of its kind into VPP calls, and VPP's dumps back into
values; it goes through ``vppagent.vpp`` families, never vpp_papi.

The idea is ligato's KV descriptor (create/delete/update/dependencies/
retrieve/is-retriable), without its ceremony: a value is a frozen dataclass,
a key is derived from it, and what VPP returned on create (an sw_if_index,
a translation id) is the object's *handle*, recorded by the reconciler.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

V = TypeVar("V")
T = TypeVar("T")

Request = tuple[str, Mapping[str, Any]]  # (message name, its fields), for Target.bulk


class Target(Protocol):
    """What the engine itself needs of the thing it programs (in the agent, a ``VppClient``).

    The engine sends only pipelined batches itself (``bulk``); everything else a
    descriptor does with the target is the descriptor's business. ``unavailable``
    names the exceptions that mean "the target is not reachable": they abort a pass
    and force a resync, where any other exception fails one object.
    """

    calls: Mapping[str, int]  # requests sent, by message name (the pass's call count)
    unavailable: tuple[type[BaseException], ...]

    def bulk(self, requests: Iterable[Request], *, check: bool = True) -> list[Any]: ...


@dataclass(frozen=True)
class Key:
    """The identity of one object: its kind and a kind-specific hashable id.

    Two values with the same key are two versions of one object (an update);
    the reconciler never holds two objects with the same key.
    """

    kind: str
    id: Hashable

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class Found(Generic[V]):
    """One object ``retrieve`` read back from VPP, as a value of its kind, with its handle."""

    value: V
    handle: Any = None


class Resolver(Protocol):
    """Read-only view of the applied state, for descriptors."""

    def handle(self, key: Key) -> Any:
        """The handle of an applied object (raises KeyError if it is not applied)."""
        ...

    def key_of(self, kind: str, handle: Hashable) -> Key | None:
        """The applied object of ``kind`` whose handle is ``handle``, if any."""
        ...

    def cached(self, key: Hashable, read: Callable[[], T]) -> T:
        """``read()``, shared by every ``retrieve`` of one resync that asks with the same key.

        Kinds that read the same dump (two route kinds in one table) pay for
        it once; outside a resync it simply calls ``read()``.
        """
        ...


@runtime_checkable
class Descriptor(Protocol[V]):
    """How the reconciler handles one kind of VPP object.

    ``kind`` names the kind (unique per reconciler). ``retrieve_after``
    lists kinds that must be read back first, because ``retrieve`` maps their
    handles back to keys (routes through an interface need the interfaces).

    Contract:

    - ``key(value)`` is stable: it depends only on what identifies the object
      in VPP (a VIP+proto+port, a table+prefix, a tag), never on a handle.
    - ``create`` returns the handle (what VPP returned; None if nothing).
    - ``update`` is only called when ``can_update(old, new)``; otherwise the
      reconciler deletes and re-creates. It returns the (possibly new) handle.
    - ``delete`` of an object VPP no longer has must succeed (it is what a
      resync after a crash can lead to).
    - ``retrieve`` returns only objects the agent owns (recognised by the
      kind's tag or id scheme), as values equal to the desired value they
      were created from whenever VPP holds exactly that: equality is what
      lets a restarted agent adopt an object without touching it.
    - ``is_retriable(error)``: False for errors that retrying the same value
      cannot fix (VPP rejected the value); those wait for a new value.
    """

    kind: str
    retrieve_after: tuple[str, ...]

    def key(self, value: V) -> Hashable: ...

    def dependencies(self, value: V) -> Iterable[Key]: ...

    def create(self, vpp: Any, value: V, resolver: Resolver) -> Any: ...

    def can_update(self, old: V, new: V) -> bool: ...

    def update(self, vpp: Any, old: V, handle: Any, new: V, resolver: Resolver) -> Any: ...

    def delete(self, vpp: Any, value: V, handle: Any, resolver: Resolver) -> None: ...

    def retrieve(self, vpp: Any, resolver: Resolver) -> Iterable[Found[V]]: ...

    def is_retriable(self, error: Exception) -> bool: ...


class DescriptorBase(Generic[V]):
    """The defaults of ``Descriptor`` for kinds that do not need more: no kinds read back
    first, no dependencies, never updated in place (re-created). ``is_retriable`` has no
    default here: which errors are the value's fault is the target's knowledge
    (``vppagent.kinds.VppKind`` answers it for VPP)."""

    retrieve_after: tuple[str, ...] = ()

    def dependencies(self, value: V) -> Iterable[Key]:
        return ()

    def can_update(self, old: V, new: V) -> bool:
        return False

    def update(self, vpp: Any, old: V, handle: Any, new: V, resolver: Resolver) -> Any:
        raise NotImplementedError(f"{type(self).__name__} re-creates its objects, never updates them")


@runtime_checkable
class BatchDescriptor(Descriptor[V], Protocol[V]):
    """A kind whose create/update/delete are each ONE single-reply VPP request.

    The reconciler then pipelines many independent operations of the kind
    through ``Target.bulk`` instead of calling ``create``/``update``/
    ``delete`` one by one. ``finish`` turns VPP's reply into the handle, and
    raises (for VPP, a ``VppApiError``) when the reply says the operation failed; a
    delete whose reply says "no such object" must count as done.
    """

    def create_request(self, value: V, resolver: Resolver) -> Request: ...

    def update_request(self, old: V, handle: Any, new: V, resolver: Resolver) -> Request: ...

    def delete_request(self, value: V, handle: Any, resolver: Resolver) -> Request: ...

    def finish(self, op: str, request: Request, reply: Any, old_handle: Any) -> Any: ...
