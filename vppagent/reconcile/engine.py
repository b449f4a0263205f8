"""The reconciler: make VPP hold exactly the desired objects, with the fewest calls.

Owns: the desired set (``set_desired``), the applied state (what VPP holds of
ours, with the handles VPP returned), the failures and their retry times,
and the two operations on them:

- ``converge()`` diffs desired against applied and applies the difference in
  a safe order: deletes first, dependents before what they reference
  ("delete after unreference"); then creates and updates, an object only
  once everything it references exists ("create before reference"). Ready
  operations of one kind that the descriptor can batch go to VPP pipelined
  (``Target.bulk``) in chunks. When nothing differs it makes no call.
- ``update_desired(removed, added)`` changes a few desired objects in place
  (the incremental path): the next ``converge`` then plans only the keys
  touched since the last pass (plus failures due for retry and objects still
  waiting), so one changed Service costs O(its objects), not O(everything).
  ``set_desired`` and ``resync`` make the next pass a full diff again.
- ``resync()`` replaces the applied state by what VPP really holds of ours
  (every descriptor's ``retrieve``, in ``retrieve_after`` order). Run at
  start and after VPP restarted: the next ``converge`` then adopts what
  matches (no call), deletes what is stale and re-creates what is missing.

A failed object is recorded with its typed error and retried with backoff
(at once if its desired value changes) while the others keep converging;
``next_retry_at`` tells the caller when to call ``converge`` again. A lost
connection aborts the pass with ``VppUnavailable`` and forces a resync first
on the next one, since what was in flight is unknown.

Must not touch: Kubernetes, the agent's queue, threads. One thread (the
agent's reconciler thread) owns a Reconciler; it is not thread-safe.
The engine knows nothing of routes or services: kinds plug in descriptors.
"""
from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .descriptor import BatchDescriptor, Descriptor, Key, Target
from .errors import (
    DependencyCycle,
    DuplicateKind,
    ObjectFailed,
    ReconcileError,
    ResyncFailed,
    UnknownKind,
    VppUnavailable,
)
from .state import NEVER, Applied, AppliedState, Failure, Intent, RetryPolicy

log = logging.getLogger(__name__)


FailureHook = Callable[[Key, Any, ObjectFailed], None]


@dataclass(frozen=True)
class PassResult:
    """What one ``converge`` did."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    failed: int = 0  # operations that failed in this pass
    waiting: int = 0  # desired objects not applied: dependency missing/failed, or backing off
    calls: int = 0  # VPP requests sent (dumps included)
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted


@dataclass(frozen=True)
class ResyncResult:
    found: Mapping[str, int]  # owned objects read back, by kind
    calls: int
    seconds: float


@dataclass
class _Op:
    op: str  # "create" | "update" | "delete"
    key: Key
    old: Applied | None
    new: Intent | None


@dataclass
class _Tally:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    failed: int = 0
    failed_keys: set[Key] = field(default_factory=set)


class Reconciler:
    """Diff-and-apply over registered descriptors, against one VPP client."""

    def __init__(self, vpp: Target, *, retry: RetryPolicy | None = None, chunk: int = 2048,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None,
                 on_failure: FailureHook | None = None):
        self.vpp = vpp
        self._unavailable = vpp.unavailable
        self.retry = retry or RetryPolicy()
        self.chunk = chunk
        self._clock = clock
        self._rng = rng or random.Random()
        self._on_failure = on_failure
        self._descriptors: dict[str, Descriptor[Any]] = {}
        self._desired: dict[Key, Intent] = {}
        self.applied = AppliedState()
        self._failures: dict[Key, Failure] = {}
        self.needs_resync = True  # nothing has been read back from VPP yet
        # Incremental planning: keys that may differ between desired and
        # applied; meaningful only while ``_full_diff`` is False.
        self._dirty: set[Key] = set()
        self._full_diff = True

    # -- registration and desired state --------------------------------------

    def register(self, descriptor: Descriptor[Any]) -> None:
        if descriptor.kind in self._descriptors:
            raise DuplicateKind(descriptor.kind)
        self._descriptors[descriptor.kind] = descriptor

    def descriptor(self, kind: str) -> Descriptor[Any]:
        try:
            return self._descriptors[kind]
        except KeyError:
            raise UnknownKind(kind) from None

    def key_of(self, intent: Intent) -> Key:
        return Key(intent.kind, self.descriptor(intent.kind).key(intent.value))

    def set_desired(self, intents: Iterable[Intent]) -> None:
        """Replace the whole desired set (cheap: nothing is sent until ``converge``)."""
        desired: dict[Key, Intent] = {}
        for intent in intents:
            key = self.key_of(intent)
            prev = desired.get(key)
            if prev is not None and prev.value != intent.value:
                # Two sources want one VPP object two ways (e.g. two Services
                # with one ClusterIP): keep the first, say so once per pass.
                log.warning("conflicting desired values for %s; keeping the first", key,
                            extra={"key": str(key), "origin": str(intent.origin),
                                   "kept_origin": str(prev.origin)})
                continue
            desired.setdefault(key, intent)
        self._desired = desired
        self._full_diff = True

    def update_desired(self, removed: Iterable[Intent] = (), added: Iterable[Intent] = ()) -> None:
        """Change part of the desired set: drop ``removed``, then put ``added``.

        An intent is only dropped while the desired set still holds exactly it
        (same value and origin), so that a conflicting intent of another
        origin is never dropped by mistake; an added intent whose key another
        origin already wants differently is refused (the first stays), as in
        ``set_desired``.
        """
        for intent in removed:
            key = self.key_of(intent)
            if self._desired.get(key) == intent:
                del self._desired[key]
                self._dirty.add(key)
        for intent in added:
            key = self.key_of(intent)
            prev = self._desired.get(key)
            if prev is not None and prev.origin != intent.origin and prev.value != intent.value:
                log.warning("conflicting desired values for %s; keeping the first", key,
                            extra={"key": str(key), "origin": str(intent.origin),
                                   "kept_origin": str(prev.origin)})
                continue
            self._desired[key] = intent
            self._dirty.add(key)

    @property
    def desired(self) -> Mapping[Key, Intent]:
        return self._desired

    @property
    def failures(self) -> Mapping[Key, Failure]:
        return self._failures

    def in_sync(self) -> bool:
        """VPP holds exactly the desired objects (as far as the applied state knows)."""
        if self.needs_resync or len(self.applied) != len(self._desired):
            return False
        for key, intent in self._desired.items():
            a = self.applied.get(key)
            if a is None or a.value != intent.value:
                return False
        return True

    def next_retry_at(self) -> float | None:
        """When a failed object is next due (monotonic time), or None."""
        due = [f.retry_at for f in self._failures.values() if f.retry_at != NEVER]
        return min(due) if due else None

    # -- resync ----------------------------------------------------------------

    def resync(self) -> ResyncResult:
        """Read back every owned object from VPP; the applied state becomes exactly that."""
        t0, calls0 = time.perf_counter(), _calls(self.vpp)
        fresh = AppliedState()
        fresh.share_reads(True)
        found: dict[str, int] = {}
        for kind in self._retrieve_order():
            d = self._descriptors[kind]
            n = 0
            try:
                for item in d.retrieve(self.vpp, fresh):
                    key = Key(kind, d.key(item.value))
                    if key in fresh:
                        log.warning("VPP holds two objects with key %s; adopting the first", key,
                                    extra={"key": str(key)})
                        continue
                    fresh.put(key, Applied(item.value, item.handle, frozenset(d.dependencies(item.value))))
                    n += 1
            except self._unavailable as exc:
                self.needs_resync = True
                raise VppUnavailable(exc) from exc
            except Exception as exc:  # noqa: BLE001 - e.g. a plugin VPP lacks: name the kind
                self.needs_resync = True
                raise ResyncFailed(kind, exc) from exc
            found[kind] = n
        fresh.share_reads(False)
        self.applied = fresh
        self._full_diff = True
        # VPP's state may have changed under every failure: try them all again.
        self._failures.clear()
        self.needs_resync = False
        result = ResyncResult(found, _calls(self.vpp) - calls0, time.perf_counter() - t0)
        log.info("read back VPP state", extra={"found": str(found), "calls": result.calls,
                                               "seconds": round(result.seconds, 3)})
        return result

    def _retrieve_order(self) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}  # 1: visiting, 2: done

        def visit(kind: str, path: list[str]) -> None:
            if state.get(kind) == 2:
                return
            if state.get(kind) == 1:
                raise DependencyCycle(path + [kind])
            state[kind] = 1
            for before in self._descriptors[kind].retrieve_after:
                if before in self._descriptors:
                    visit(before, path + [kind])
            state[kind] = 2
            order.append(kind)

        for kind in self._descriptors:
            visit(kind, [])
        return order

    # -- converge --------------------------------------------------------------

    def converge(self) -> PassResult:
        """Apply the difference between desired and applied; see the module docstring."""
        t0, calls0 = time.perf_counter(), _calls(self.vpp)
        if self.needs_resync:
            self.resync()
        now = self._clock()
        tally = _Tally()
        if self._full_diff:
            scope = None
        else:
            scope = self._dirty | {k for k, f in self._failures.items() if f.retry_at <= now}
        removes, changes, waiting, candidates = self._plan(now, scope)
        try:
            self._apply_removes(removes, tally)
            waiting += self._apply_changes(changes, tally)
        except self._unavailable as exc:
            self.needs_resync = True
            raise VppUnavailable(exc) from exc
        # What still differs (failed, backing off, waiting for a dependency)
        # stays in scope for the next incremental pass.
        self._dirty = {k for k in candidates if self._differs(k)}
        self._full_diff = False
        result = PassResult(tally.created, tally.updated, tally.deleted, tally.failed, waiting,
                            _calls(self.vpp) - calls0, time.perf_counter() - t0)
        if result.changed or result.failed:
            log.info("reconcile pass", extra={
                "n_created": result.created, "n_updated": result.updated, "n_deleted": result.deleted,
                "n_failed": result.failed, "waiting": result.waiting, "calls": result.calls,
                "seconds": round(result.seconds, 3)})
        return result

    def _due(self, key: Key, value: Any, now: float) -> bool:
        """May ``key`` be tried now? Not while backing off from a failure of this same value."""
        f = self._failures.get(key)
        if f is None:
            return True
        if f.value != value:
            return True  # a new value: try it at once
        return now >= f.retry_at

    def _differs(self, key: Key) -> bool:
        intent = self._desired.get(key)
        a = self.applied.get(key)
        if intent is None or a is None:
            return (intent is None) != (a is None)
        return a.value != intent.value

    def _plan(self, now: float, scope: set[Key] | None = None
              ) -> tuple[dict[Key, _Op], dict[Key, _Op], int, set[Key]]:
        """The operations of this pass over every key (``scope`` None) or only ``scope``;
        also every key planned (whether due now or not)."""
        # A failure of an object that is neither wanted nor held any more is moot.
        for key in [k for k in self._failures if k not in self._desired and k not in self.applied]:
            del self._failures[key]
        removes: dict[Key, _Op] = {}
        changes: dict[Key, _Op] = {}
        if scope is None:
            held: Iterable[tuple[Key, Applied]] = self.applied.objects.items()
            wanted: Iterable[tuple[Key, Intent]] = self._desired.items()
        else:
            held = [(k, a) for k in scope if (a := self.applied.get(k)) is not None]
            wanted = [(k, i) for k in scope if (i := self._desired.get(k)) is not None]
        for key, a in held:
            if key not in self._desired:
                removes[key] = _Op("delete", key, a, None)
        for key, intent in wanted:
            a = self.applied.get(key)
            if a is None:
                changes[key] = _Op("create", key, None, intent)
            elif a.value != intent.value:
                if self._descriptors[key.kind].can_update(a.value, intent.value):
                    changes[key] = _Op("update", key, a, intent)
                else:
                    removes[key] = _Op("delete", key, a, None)
                    changes[key] = _Op("create", key, None, intent)
        # Whatever references an object that goes must go first, and come back
        # after it if it is still wanted (its reference would dangle otherwise).
        if removes:
            stack = list(removes)
            while stack:
                for j in self.applied.dependents_of(stack.pop()):
                    if j not in removes:
                        removes[j] = _Op("delete", j, self.applied.objects[j], None)
                        if j in self._desired:
                            changes[j] = _Op("create", j, None, self._desired[j])
                        stack.append(j)
        candidates = set(removes) | set(changes)
        waiting = 0
        for key in [k for k, op in removes.items() if not self._due(k, None, now)]:
            del removes[key]
        for key in [k for k, op in changes.items() if not self._due(k, op.new.value, now)]:
            del changes[key]
            waiting += 1
        return removes, changes, waiting, candidates

    def _apply_removes(self, removes: dict[Key, _Op], tally: _Tally) -> None:
        if not removes:
            return
        remaining = dict(removes)
        while remaining:
            # Ready: nothing still applied references it (its dependents are
            # gone, or are not being removed in this pass because they failed).
            ready = [op for k, op in remaining.items() if not self.applied.dependents_of(k)]
            if not ready:
                break  # the rest waits for a dependent whose delete failed
            for op in ready:
                del remaining[op.key]
            self._run(ready, tally)

    def _apply_changes(self, changes: dict[Key, _Op], tally: _Tally) -> int:
        pending = dict(changes)
        deps_of = {k: frozenset(self._descriptors[k.kind].dependencies(op.new.value))
                   for k, op in pending.items()}
        while pending:
            ready = []
            for k, op in pending.items():
                if op.op == "create" and k in self.applied:
                    continue  # its delete (for a replace) failed: wait for that
                if all(d in self.applied and d not in pending for d in deps_of[k]):
                    ready.append(op)
            if not ready:
                break
            for op in ready:
                del pending[op.key]
            self._run(ready, tally, deps_of)
        if pending:
            log.debug("objects waiting for dependencies", extra={
                "waiting": len(pending), "first": str(next(iter(pending)))})
        return len(pending)

    # -- running operations -----------------------------------------------------

    def _run(self, ops: list[_Op], tally: _Tally, deps_of: Mapping[Key, frozenset[Key]] | None = None) -> None:
        by_kind: dict[str, list[_Op]] = defaultdict(list)
        for op in ops:
            by_kind[op.key.kind].append(op)
        for kind, kops in by_kind.items():
            d = self._descriptors[kind]
            if isinstance(d, BatchDescriptor) and len(kops) > 1:
                for i in range(0, len(kops), self.chunk):
                    self._run_batch(d, kops[i:i + self.chunk], tally, deps_of)
            else:
                for op in kops:
                    self._run_one(d, op, tally, deps_of)

    def _run_one(self, d: Descriptor[Any], op: _Op, tally: _Tally,
                 deps_of: Mapping[Key, frozenset[Key]] | None) -> None:
        try:
            if op.op == "delete":
                assert op.old is not None
                d.delete(self.vpp, op.old.value, op.old.handle, self.applied)
                handle = None
            elif op.op == "create":
                handle = d.create(self.vpp, op.new.value, self.applied)
            else:
                assert op.old is not None
                handle = d.update(self.vpp, op.old.value, op.old.handle, op.new.value, self.applied)
        except self._unavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is this object's, typed and recorded
            self._failed(d, op, exc, tally)
            return
        self._done(op, handle, tally, deps_of)

    def _run_batch(self, d: BatchDescriptor[Any], ops: list[_Op], tally: _Tally,
                   deps_of: Mapping[Key, frozenset[Key]] | None) -> None:
        requests = []
        sent: list[_Op] = []
        for op in ops:
            try:
                if op.op == "delete":
                    req = d.delete_request(op.old.value, op.old.handle, self.applied)
                elif op.op == "create":
                    req = d.create_request(op.new.value, self.applied)
                else:
                    req = d.update_request(op.old.value, op.old.handle, op.new.value, self.applied)
            except Exception as exc:  # noqa: BLE001 - e.g. a value VPP cannot encode
                self._failed(d, op, exc, tally)
                continue
            requests.append(req)
            sent.append(op)
        if not requests:
            return
        try:
            replies = self.vpp.bulk(requests, check=False)
        except self._unavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - one request VPP's client could not send
            # The batch failed as a whole (e.g. one value the client cannot
            # encode): every operation is idempotent, so redo them one by one
            # and let the culprit fail alone.
            log.warning("batch failed as a whole; applying its operations one by one",
                        extra={"kind": d.kind, "requests": len(requests), "error": str(exc)})
            for op in sent:
                self._run_one(d, op, tally, deps_of)
            return
        for op, req, reply in zip(sent, requests, replies):
            try:
                handle = d.finish(op.op, req, reply, op.old.handle if op.old else None)
            except Exception as exc:  # noqa: BLE001
                self._failed(d, op, exc, tally)
                continue
            self._done(op, handle, tally, deps_of)
        log.debug("applied a batch", extra={"kind": d.kind, "requests": len(requests)})

    def _done(self, op: _Op, handle: Any, tally: _Tally, deps_of: Mapping[Key, frozenset[Key]] | None) -> None:
        self._failures.pop(op.key, None)
        if op.op == "delete":
            self.applied.remove(op.key)
            tally.deleted += 1
            return
        d = self._descriptors[op.key.kind]
        deps = deps_of[op.key] if deps_of is not None else frozenset(d.dependencies(op.new.value))
        self.applied.put(op.key, Applied(op.new.value, handle, deps))
        if op.op == "create":
            tally.created += 1
        else:
            tally.updated += 1

    def _failed(self, d: Descriptor[Any], op: _Op, exc: Exception, tally: _Tally) -> None:
        try:
            retriable = bool(d.is_retriable(exc))
        except Exception:  # noqa: BLE001 - a descriptor bug must not stop the pass
            retriable = True
        prev = self._failures.get(op.key)
        value = op.new.value if op.new is not None else None
        attempts = prev.attempts + 1 if prev is not None and prev.value == value else 1
        retry_at = self._clock() + self.retry.delay(attempts, self._rng) if retriable else NEVER
        self._failures[op.key] = Failure(op.op, exc, attempts, retry_at, value, retriable)
        tally.failed += 1
        tally.failed_keys.add(op.key)
        origin = op.new.origin if op.new is not None else None
        err = ObjectFailed(op.key, op.op, exc, retriable)
        # The first failure of a value is a warning; its retries are quieter.
        log.log(logging.WARNING if attempts == 1 else logging.DEBUG, "%s", err, extra={
            "key": str(op.key), "op": op.op, "error": str(exc), "error_type": type(exc).__name__,
            "retriable": retriable, "attempts": attempts, "origin": str(origin) if origin else None})
        if self._on_failure is not None and attempts == 1:
            try:
                self._on_failure(op.key, origin, err)
            except Exception:  # noqa: BLE001 - reporting must never break reconciling
                log.exception("failure hook raised")


def _calls(vpp: Target) -> int:
    return sum(vpp.calls.values())


__all__ = ["PassResult", "Reconciler", "ReconcileError", "ResyncResult", "VppUnavailable"]
