"""The API kinds the sources watch, and how to list/watch each one.

Owns: per kind, the API version, whether it is namespaced, which generated
``list_*`` function of the ``kubernetes`` client serves it (cluster-wide:
the ``*_for_all_namespaces`` variants) and which model converter applies.
Must not touch: the list/watch loop (``source.py``), the model's fields.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from vppagent.model.k8s import (
    K8sObject,
    endpointslice_from_api,
    namespace_from_api,
    networkpolicy_from_api,
    node_from_api,
    pod_from_api,
    service_from_api,
)

ListFunction = Callable[..., Any]


@dataclass(frozen=True)
class KindSpec:
    kind: str
    api_version: str
    namespaced: bool
    # Given an ApiClient, the bound list function (which also watches with watch=True).
    list_function: Callable[[client.ApiClient], ListFunction]
    convert: Callable[[Mapping[str, Any]], K8sObject]
    plural: str


NODES = KindSpec("Node", "v1", False, lambda c: client.CoreV1Api(c).list_node, node_from_api, "nodes")
NAMESPACES = KindSpec("Namespace", "v1", False, lambda c: client.CoreV1Api(c).list_namespace,
                      namespace_from_api, "namespaces")
PODS = KindSpec("Pod", "v1", True, lambda c: client.CoreV1Api(c).list_pod_for_all_namespaces,
                pod_from_api, "pods")
SERVICES = KindSpec("Service", "v1", True, lambda c: client.CoreV1Api(c).list_service_for_all_namespaces,
                    service_from_api, "services")
ENDPOINT_SLICES = KindSpec(
    "EndpointSlice", "discovery.k8s.io/v1", True,
    lambda c: client.DiscoveryV1Api(c).list_endpoint_slice_for_all_namespaces,
    endpointslice_from_api, "endpointslices")
NETWORK_POLICIES = KindSpec(
    "NetworkPolicy", "networking.k8s.io/v1", True,
    lambda c: client.NetworkingV1Api(c).list_network_policy_for_all_namespaces,
    networkpolicy_from_api, "networkpolicies")

ALL_KINDS: tuple[KindSpec, ...] = (NODES, NAMESPACES, PODS, SERVICES, ENDPOINT_SLICES, NETWORK_POLICIES)
