"""Typed errors of the reconciler.

Owns the error classes and their wording. Each names the object (its key),
the operation and the cause, so that one log line or one Kubernetes Event
says what failed without a traceback. Must not touch: retry policy (the
engine's) or reporting (the agent's).
"""
from __future__ import annotations

from .descriptor import Key


class ReconcileError(Exception):
    """Base of every error raised by vppagent.reconcile."""


class UnknownKind(ReconcileError):
    """A desired object names a kind no descriptor was registered for."""

    def __init__(self, kind: str):
        self.kind = kind
        super().__init__(f"no descriptor registered for kind {kind!r}")


class DuplicateKind(ReconcileError):
    def __init__(self, kind: str):
        self.kind = kind
        super().__init__(f"a descriptor for kind {kind!r} is already registered")


class DependencyCycle(ReconcileError):
    """Descriptors' ``retrieve_after`` (or values' dependencies) form a cycle."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        super().__init__(f"dependency cycle among {', '.join(keys[:10])}")


class VppUnavailable(ReconcileError):
    """VPP went away (disconnect, timeout) during a pass; a resync is needed once it is back.

    What was in flight may or may not have been applied: only reading VPP
    back can tell, which is why the engine resyncs before its next pass.
    """

    def __init__(self, cause: Exception):
        self.cause = cause
        super().__init__(f"VPP unavailable: {cause}")


class ResyncFailed(ReconcileError):
    """Reading one kind back from VPP failed for another reason than VPP going away."""

    def __init__(self, kind: str, cause: Exception):
        self.kind = kind
        self.cause = cause
        super().__init__(f"reading back {kind} from VPP failed: {cause}")


class ObjectFailed(ReconcileError):
    """One object's operation failed; ``cause`` is the typed error VPP or the descriptor raised."""

    def __init__(self, key: Key, op: str, cause: Exception, retriable: bool):
        self.key = key
        self.op = op
        self.cause = cause
        self.retriable = retriable
        super().__init__(f"{op} {key} failed: {cause}")
