"""The one error the Kubernetes-facing model raises: ``InvalidObject``.

Owns: the error type and its wording. Must not touch: logging, the API, or
any decision about what to do with a bad object (the sources decide that).
"""
from __future__ import annotations


class ModelError(Exception):
    """Base of every error raised by vppagent.model."""


class InvalidObject(ModelError):
    """An API object has a field the agent cannot accept.

    Carries enough context for one log line and one Kubernetes Event: the
    object's kind, namespace (empty for cluster-scoped kinds) and name, the
    JSON path of the offending field (``spec.ports[0].port``) and why.
    """

    def __init__(self, kind: str, namespace: str, name: str, field: str, reason: str):
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.field = field
        self.reason = reason
        super().__init__(str(self))

    @property
    def object_name(self) -> str:
        """``namespace/name`` for namespaced objects, ``name`` otherwise."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def __str__(self) -> str:
        return f"{self.kind} {self.object_name}: {self.field}: {self.reason}"

    def __reduce__(self):  # keep the error picklable despite the custom __init__
        return (type(self), (self.kind, self.namespace, self.name, self.field, self.reason))
