"""The Kubernetes-facing model: what the agent needs from the API, as frozen values.

Owns: one frozen, hashable dataclass per API kind the agent watches (Node,
Namespace, Pod, Service, EndpointSlice, NetworkPolicy), label selectors, and
the conversion functions from the API's JSON. Conversions take plain dicts
(the JSON the API server sends, camelCase keys), never the ``kubernetes``
client's model classes: those are strict pydantic models that would reject a
whole list because of one odd object, and cost a deserialization per event.

Every conversion validates; a bad field raises ``InvalidObject`` naming the
object and the field path. Objects only keep fields the data plane uses, so
that unrelated churn (status heartbeats, managedFields) compares equal.

Must not touch: the network, logging, VPP.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .cluster import Namespace, Node, namespace_from_api, node_from_api
from .common import ANNOTATION_PREFIX, ObjectKey, Protocol
from .endpointslice import (
    SERVICE_NAME_LABEL,
    AddressType,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    endpointslice_from_api,
)
from .errors import InvalidObject, ModelError
from .fields import FrozenMap, IPAddress, IPNetwork
from .networkpolicy import (
    IPBlock,
    NetworkPolicy,
    PolicyPeer,
    PolicyPort,
    PolicyRule,
    PolicyType,
    networkpolicy_from_api,
)
from .pod import ContainerPort, Pod, pod_from_api
from .selector import LabelSelector, Operator, Requirement
from .service import (
    ServicePort,
    Service,
    ServiceType,
    SessionAffinity,
    TrafficPolicy,
    service_from_api,
)

K8sObject = Node | Namespace | Pod | Service | EndpointSlice | NetworkPolicy

# kind -> converter; the sources look converters up here.
CONVERTERS: Mapping[str, Callable[[Mapping[str, Any]], K8sObject]] = {
    "Node": node_from_api,
    "Namespace": namespace_from_api,
    "Pod": pod_from_api,
    "Service": service_from_api,
    "EndpointSlice": endpointslice_from_api,
    "NetworkPolicy": networkpolicy_from_api,
}


def from_api(kind: str, obj: Mapping[str, Any]) -> K8sObject:
    """Convert one API object of ``kind``; raises InvalidObject (or KeyError for an unknown kind)."""
    return CONVERTERS[kind](obj)


__all__ = [
    "ANNOTATION_PREFIX", "AddressType", "CONVERTERS", "ContainerPort", "Endpoint", "EndpointPort",
    "EndpointSlice", "FrozenMap", "IPAddress", "IPBlock", "IPNetwork", "InvalidObject", "K8sObject",
    "LabelSelector", "ModelError", "Namespace", "NetworkPolicy", "Node", "ObjectKey", "Operator",
    "Pod", "PolicyPeer", "PolicyPort", "PolicyRule", "PolicyType", "Protocol", "Requirement",
    "SERVICE_NAME_LABEL", "Service", "ServicePort", "ServiceType", "SessionAffinity", "TrafficPolicy",
    "endpointslice_from_api", "from_api", "namespace_from_api", "networkpolicy_from_api",
    "node_from_api", "pod_from_api", "service_from_api",
]
