"""The reconciler: desired state in, ordered idempotent VPP operations out.

Owns: the engine (``engine.Reconciler``), the contract a kind of VPP object
implements to take part (``descriptor.Descriptor``, ``BatchDescriptor``),
the records of desired/applied/failed objects (``state``), typed errors, and
and the ``Target`` the engine sends batches to. The kinds themselves live with
their features and in ``vppagent.kinds``.

How a feature registers a kind: build a descriptor (an object with the
``Descriptor`` methods, plus the ``BatchDescriptor`` ones if each operation
is one VPP request), ``reconciler.register(descriptor)`` once, then pass
``Intent(kind, value, origin)`` objects to ``set_desired`` and call
``converge()``. The engine never imports a feature.

Must not touch: Kubernetes, the agent's queue or threads, VPP: the engine imports
no VPP module. It calls its target's ``bulk``, stops a pass on the target's
``unavailable`` errors, and asks each descriptor whether an error is worth a retry.
"""
from .descriptor import BatchDescriptor, Descriptor, DescriptorBase, Found, Key, Request, Resolver, Target
from .engine import PassResult, Reconciler, ResyncResult
from .errors import (
    DependencyCycle,
    DuplicateKind,
    ObjectFailed,
    ReconcileError,
    ResyncFailed,
    UnknownKind,
    VppUnavailable,
)
from .state import Applied, AppliedState, Delta, Failure, Intent, Problem, RetryPolicy

__all__ = [
    "Applied", "AppliedState", "BatchDescriptor", "Delta", "DependencyCycle", "Descriptor", "DescriptorBase",
    "DuplicateKind",
    "Failure", "Found", "Intent", "Key", "ObjectFailed", "PassResult", "Problem", "ReconcileError", "Reconciler",
    "Request", "Resolver", "ResyncFailed", "ResyncResult", "RetryPolicy", "Target", "UnknownKind", "VppUnavailable",
]
