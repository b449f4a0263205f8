"""What the sources put on the agent's queue: model objects as they come, change and go.

Owns: the three event types. Every source pushes them onto the ONE
``queue.Queue`` the agent gives it; the reconciler thread is the only
consumer, and ``ClusterState`` applies them. They live in the model, below
both, so that the cluster state needs nothing of the sources.
Must not touch: the queue's consumers, the model's fields.
"""
from __future__ import annotations

from dataclasses import dataclass

from vppagent.model.k8s import K8sObject, ObjectKey


@dataclass(frozen=True)
class Upsert:
    """An object appeared or changed in a way the model can see."""

    obj: K8sObject
    source: str  # the name of the source that saw it, e.g. "pods" or "pods@node-1"

    @property
    def key(self) -> ObjectKey:
        return self.obj.key


@dataclass(frozen=True)
class Delete:
    """An object is gone; ``last`` is the last valid version the source emitted."""

    key: ObjectKey
    last: K8sObject
    source: str


@dataclass(frozen=True)
class Synced:
    """The source's first complete list has been emitted (sent once per source)."""

    kind: str
    source: str


SourceEvent = Upsert | Delete | Synced
