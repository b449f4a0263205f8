"""Cluster-scoped objects: Node and Namespace.

Owns: which Node and Namespace fields the agent sees, and their validation.
Node status heartbeats and conditions are deliberately not modelled, so that
they never show up as changes. Must not touch: the API, logging.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .common import ANNOTATION_PREFIX, ObjectKey
from .fields import EMPTY_MAP, FrozenMap, IPAddress, IPNetwork, read_metadata


@dataclass(frozen=True)
class Node:
    """A cluster node: where pods live and where tunnels go."""

    name: str
    uid: str = ""
    pod_cidrs: tuple[IPNetwork, ...] = ()
    internal_ips: tuple[IPAddress, ...] = ()
    external_ips: tuple[IPAddress, ...] = ()
    annotations: FrozenMap = EMPTY_MAP  # vppagent.io/* only
    labels: FrozenMap = EMPTY_MAP

    KIND = "Node"

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.KIND, "", self.name)


@dataclass(frozen=True)
class Namespace:
    """A namespace; its labels feed NetworkPolicy namespaceSelectors."""

    name: str
    uid: str = ""
    labels: FrozenMap = EMPTY_MAP

    KIND = "Namespace"

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.KIND, "", self.name)


def node_from_api(obj: Mapping[str, Any]) -> Node:
    """Build a Node from the API's JSON (a dict); raises InvalidObject."""
    r, meta = read_metadata(Node.KIND, obj, namespaced=False)
    spec = r.mapping(obj.get("spec"), "spec")
    status = r.mapping(obj.get("status"), "status")

    raw_cidrs = r.items(spec.get("podCIDRs"), "spec.podCIDRs")
    if raw_cidrs:
        cidrs = tuple(r.cidr(c, f"spec.podCIDRs[{i}]") for i, c in enumerate(raw_cidrs))
    elif spec.get("podCIDR"):
        # Clusters older than dual-stack only fill the singular field.
        cidrs = (r.cidr(spec["podCIDR"], "spec.podCIDR"),)
    else:
        cidrs = ()

    internal: list[IPAddress] = []
    external: list[IPAddress] = []
    for i, addr in enumerate(r.items(status.get("addresses"), "status.addresses")):
        addr = r.mapping(addr, f"status.addresses[{i}]")
        kind = addr.get("type")
        if kind in ("InternalIP", "ExternalIP"):
            ip = r.ip(addr.get("address"), f"status.addresses[{i}].address")
            (internal if kind == "InternalIP" else external).append(ip)
    return Node(
        name=r.name,
        uid=r.string(meta.get("uid"), "metadata.uid"),
        pod_cidrs=cidrs,
        internal_ips=tuple(internal),
        external_ips=tuple(external),
        annotations=r.str_map(meta.get("annotations"), "metadata.annotations", (ANNOTATION_PREFIX,)),
        labels=r.str_map(meta.get("labels"), "metadata.labels"),
    )


def namespace_from_api(obj: Mapping[str, Any]) -> Namespace:
    """Build a Namespace from the API's JSON (a dict); raises InvalidObject."""
    r, meta = read_metadata(Namespace.KIND, obj, namespaced=False)
    return Namespace(
        name=r.name,
        uid=r.string(meta.get("uid"), "metadata.uid"),
        labels=r.str_map(meta.get("labels"), "metadata.labels"),
    )
