"""Desired state as pure data: frozen, hashable, comparable, no I/O.

Owns: the model the reconciler diffs. ``vppagent.model.k8s`` holds what the
agent reads from Kubernetes (Node, Namespace, Pod, Service, EndpointSlice,
NetworkPolicy, label selectors), re-exported here; ``events`` the changes
the sources announce, and ``cluster_state.ClusterState`` the one mutable
holder of the current objects, which the agent's loop fills from those
events. Must not touch: the network, VPP, logging.
"""
from __future__ import annotations

from .k8s import (
    CONVERTERS,
    AddressType,
    ContainerPort,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    FrozenMap,
    InvalidObject,
    IPBlock,
    K8sObject,
    LabelSelector,
    ModelError,
    Namespace,
    NetworkPolicy,
    Node,
    ObjectKey,
    Operator,
    Pod,
    PolicyPeer,
    PolicyPort,
    PolicyRule,
    PolicyType,
    Protocol,
    Requirement,
    Service,
    ServicePort,
    ServiceType,
    SessionAffinity,
    TrafficPolicy,
    from_api,
)

__all__ = [
    "CONVERTERS", "AddressType", "ContainerPort", "Endpoint", "EndpointPort", "EndpointSlice",
    "FrozenMap", "IPBlock", "InvalidObject", "K8sObject", "LabelSelector", "ModelError", "Namespace",
    "NetworkPolicy", "Node", "ObjectKey", "Operator", "Pod", "PolicyPeer", "PolicyPort", "PolicyRule",
    "PolicyType", "Protocol", "Requirement", "Service", "ServicePort", "ServiceType",
    "SessionAffinity", "TrafficPolicy", "from_api",
]
