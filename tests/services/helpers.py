"""Builders of model objects for the services tests, and a cluster view the feature reads."""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from vppagent.model.cluster_state import ClusterState
from vppagent.model.k8s import (
    AddressType,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    FrozenMap,
    Node,
    Protocol,
    Service,
    ServicePort,
    ServiceType,
)
from vppagent.services import Scope
from vppagent.sources import Delete, Upsert

ip = ipaddress.ip_address
net = ipaddress.ip_network

ME = "node-1"
SERVICE_CIDRS = (net("10.96.0.0/12"), net("fd00:96::/108"))
EXTERNAL_CIDRS = (net("203.0.113.0/24"), net("2001:db8:ee::/64"))
CLUSTER_CIDRS = (net("10.244.0.0/16"), net("fd00:244::/56"))
NODE_IPS = (ip("192.168.0.1"), ip("fd00:c0::1"))


def scope(**over) -> Scope:
    base = dict(service_cidrs=SERVICE_CIDRS, external_cidrs=EXTERNAL_CIDRS, node_port_range=(30000, 32767),
                node_name=ME, node_ips=NODE_IPS, flow_hash=0x1F)
    base.update(over)
    return Scope(**base)


def port(name="http", proto=Protocol.TCP, number=80, target=None, node_port=None) -> ServicePort:
    return ServicePort(name, proto, number, target if target is not None else number, node_port)


def svc(name="web", ips=("10.96.0.10",), ports=None, ns="default", annotations=None, **kw) -> Service:
    return Service(ns, name, cluster_ips=tuple(_ip_or_text(i) for i in ips),
                   ports=tuple(ports if ports is not None else (port(),)),
                   annotations=FrozenMap(annotations or {}), **kw)


def _ip_or_text(v):
    """An address, or the text itself when it is not one (to build invalid Services)."""
    try:
        return ip(v)
    except ValueError:
        return v


def ep(addr: str, *, node=ME, ready=True, serving=None, terminating=False) -> Endpoint:
    return Endpoint((ip(addr),), ready=ready, serving=ready if serving is None else serving,
                    terminating=terminating, node_name=node)


def eps(name="web-a", service="web", endpoints: Iterable[Endpoint] = (), ports=(("http", Protocol.TCP, 8080),),
        family=AddressType.IPV4, ns="default") -> EndpointSlice:
    return EndpointSlice(ns, name, service_name=service, address_type=family,
                         ports=tuple(EndpointPort(n, p, num) for n, p, num in ports),
                         endpoints=tuple(endpoints))


def node(name=ME, ips=NODE_IPS, external=()) -> Node:
    return Node(name, internal_ips=tuple(ips), external_ips=tuple(ip(e) for e in external))


def cluster(*objects) -> ClusterState:
    c = ClusterState()
    for o in objects:
        c.apply(Upsert(o, "test"))
    return c


def upsert(c: ClusterState, obj) -> object:
    c.apply(Upsert(obj, "test"))
    return obj.key


def delete(c: ClusterState, obj) -> object:
    c.apply(Delete(obj.key, obj, "test"))
    return obj.key


__all__ = ["AddressType", "Protocol", "ServiceType", "cluster", "delete", "ep", "eps", "ip", "net", "node",
           "port", "scope", "svc", "upsert"]
