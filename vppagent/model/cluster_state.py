"""The Kubernetes objects the features read, kept current from the sources' events.

Owns: ``ClusterState``, filled only by the agent's loop (``apply``) and read
by every feature's ``desired``: nodes by name, services and endpoint slices
by key (with the slices of each service), and the other kinds by key. It sits
in the model, below the features, so that each feature can name the type it
reads instead of ``Any``.

Must not touch: the sources (it only receives their events), VPP.
"""
from __future__ import annotations

from collections.abc import Sequence

from vppagent.model.events import Delete, Upsert
from vppagent.model.k8s import EndpointSlice, K8sObject, Node, ObjectKey, Service


class ClusterState:
    """The Kubernetes objects features read, by key; fed by source events."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.services: dict[ObjectKey, Service] = {}
        self.slices: dict[ObjectKey, EndpointSlice] = {}
        self.others: dict[ObjectKey, K8sObject] = {}
        self._slices_by_service: dict[ObjectKey, dict[ObjectKey, EndpointSlice]] = {}

    def apply(self, event: Upsert | Delete) -> None:
        if isinstance(event, Upsert):
            self._put(event.obj)
        else:
            self._remove(event.key, event.last)

    def _put(self, obj: K8sObject) -> None:
        if isinstance(obj, Node):
            self.nodes[obj.name] = obj
        elif isinstance(obj, Service):
            self.services[obj.key] = obj
        elif isinstance(obj, EndpointSlice):
            old = self.slices.get(obj.key)
            if old is not None and old.service_key is not None:
                self._slices_by_service.get(old.service_key, {}).pop(obj.key, None)
            self.slices[obj.key] = obj
            if obj.service_key is not None:
                self._slices_by_service.setdefault(obj.service_key, {})[obj.key] = obj
        else:
            self.others[obj.key] = obj

    def _remove(self, key: ObjectKey, last: K8sObject) -> None:
        if isinstance(last, Node):
            self.nodes.pop(key.name, None)
        elif isinstance(last, Service):
            self.services.pop(key, None)
        elif isinstance(last, EndpointSlice):
            old = self.slices.pop(key, None)
            if old is not None and old.service_key is not None:
                by = self._slices_by_service.get(old.service_key, {})
                by.pop(key, None)
                if not by:
                    self._slices_by_service.pop(old.service_key, None)
        else:
            self.others.pop(key, None)

    def slices_of(self, service: ObjectKey) -> Sequence[EndpointSlice]:
        by = self._slices_by_service.get(service)
        return [by[k] for k in sorted(by)] if by else []

    def get(self, key: ObjectKey) -> K8sObject | None:
        if key.kind == "Node":
            return self.nodes.get(key.name)
        if key.kind == "Service":
            return self.services.get(key)
        if key.kind == "EndpointSlice":
            return self.slices.get(key)
        return self.others.get(key)


__all__ = ["ClusterState"]
