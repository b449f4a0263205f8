"""Types shared by every Kubernetes-facing model object.

Owns: ``ObjectKey`` (the identity of an API object), ``Protocol`` and the
annotation prefix the agent reads. Must not touch: per-kind fields.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Only annotations under this prefix are kept on model objects: the rest
# (last-applied-configuration, controller bookkeeping) change often and would
# turn into updates that carry no meaning for the data plane.
ANNOTATION_PREFIX = "vppagent.io/"


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


@dataclass(frozen=True, order=True)
class ObjectKey:
    """Identity of one API object; ``namespace`` is empty for cluster-scoped kinds."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"
