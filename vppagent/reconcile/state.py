"""The reconciler's records: what is wanted, what VPP holds, what failed.

Owns: ``Intent`` (one desired object, with an opaque ``origin`` the caller
uses to report on it), ``Problem`` (an input a feature could not express), ``Applied`` (one object VPP holds, with the handle VPP
returned), ``Failure`` (the typed error of an object's last attempt and when
to retry), ``RetryPolicy`` and ``AppliedState`` (the applied objects with a
reverse index from handles to keys). Must not touch: VPP, descriptors'
internals.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .descriptor import Key

T = TypeVar("T")


@dataclass(frozen=True)
class Intent:
    """One object the caller wants in VPP.

    ``origin`` is not part of the value: it says where the object comes from
    (e.g. the Kubernetes Service) so that failures can be reported there.
    """

    kind: str
    value: Any
    origin: Any = None


@dataclass(frozen=True)
class Problem:
    """An input a feature refused to turn into intents (it would be wrong, or not ours).

    ``origin`` is the same opaque reference intents carry; ``reason`` is a
    short CamelCase word (it becomes a Kubernetes Event reason), ``message``
    one sentence for an operator.
    """

    origin: Any
    reason: str
    message: str


@dataclass(frozen=True)
class Delta:
    """A change to one feature's part of the desired set: drop ``removed``, put ``added``.

    ``problems`` is that feature's complete list of current problems, not a change.
    """

    removed: list[Intent] = field(default_factory=list)
    added: list[Intent] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class Applied:
    """An object VPP holds: its value, the handle VPP returned, the keys it referenced."""

    value: Any
    handle: Any = None
    deps: frozenset[Key] = frozenset()


@dataclass(frozen=True)
class Failure:
    """The last failed attempt on one object."""

    op: str  # "create", "update", "delete"
    error: Exception
    attempts: int
    retry_at: float  # monotonic time; math.inf: not until the value changes
    value: Any  # the value that failed (a new value is tried at once)
    retriable: bool


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for failed objects."""

    initial_s: float = 0.5
    max_s: float = 30.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not (0 < self.initial_s <= self.max_s and 0 <= self.jitter < 1):
            raise ValueError(f"invalid retry policy {self}")

    def delay(self, attempts: int, rng: random.Random) -> float:
        base = min(self.max_s, self.initial_s * 2 ** min(attempts - 1, 32))
        return base * (1 - self.jitter * rng.random())


@dataclass
class AppliedState:
    """Applied objects by key, and a reverse index (kind, handle) -> key."""

    objects: dict[Key, Applied] = field(default_factory=dict)
    _by_handle: dict[tuple[str, Hashable], Key] = field(default_factory=dict)
    # dep -> the applied keys that reference it: lets a pass find what must go
    # before an object without scanning every applied object.
    _dependents: dict[Key, set[Key]] = field(default_factory=dict)
    _reads: dict[Hashable, Any] | None = None

    def __contains__(self, key: object) -> bool:
        return key in self.objects

    def __len__(self) -> int:
        return len(self.objects)

    def __iter__(self) -> Iterator[Key]:
        return iter(self.objects)

    def get(self, key: Key) -> Applied | None:
        return self.objects.get(key)

    def put(self, key: Key, applied: Applied) -> None:
        old = self.objects.get(key)
        if old is not None:
            self._unindex(key, old)
        self.objects[key] = applied
        if _hashable(applied.handle):
            self._by_handle[(key.kind, applied.handle)] = key
        for dep in applied.deps:
            self._dependents.setdefault(dep, set()).add(key)

    def remove(self, key: Key) -> None:
        old = self.objects.pop(key, None)
        if old is not None:
            self._unindex(key, old)

    def clear(self) -> None:
        self.objects.clear()
        self._by_handle.clear()
        self._dependents.clear()

    def dependents_of(self, key: Key) -> frozenset[Key]:
        """The applied objects that reference ``key``."""
        return frozenset(self._dependents.get(key, ()))

    def _unindex(self, key: Key, old: Applied) -> None:
        if _hashable(old.handle) and self._by_handle.get((key.kind, old.handle)) == key:
            del self._by_handle[(key.kind, old.handle)]
        for dep in old.deps:
            users = self._dependents.get(dep)
            if users is not None:
                users.discard(key)
                if not users:
                    del self._dependents[dep]

    # -- Resolver -----------------------------------------------------------

    def handle(self, key: Key) -> Any:
        return self.objects[key].handle

    def key_of(self, kind: str, handle: Hashable) -> Key | None:
        return self._by_handle.get((kind, handle))

    def cached(self, key: Hashable, read: Callable[[], T]) -> T:
        if self._reads is None:
            return read()
        if key not in self._reads:
            self._reads[key] = read()
        return self._reads[key]

    def share_reads(self, on: bool) -> None:
        """While on (one resync), ``cached`` reads are kept and shared; off drops them."""
        self._reads = {} if on else None


def _hashable(handle: Any) -> bool:
    if handle is None:
        return False
    try:
        hash(handle)
    except TypeError:
        return False
    return True


NEVER = math.inf
