"""Services: the virtual IPs and ports the data plane load-balances.

Owns: Service and ServicePort, their defaults (as the API server applies
them) and validation. Backends are not here: they come from EndpointSlices.
Must not touch: the API, logging, service expansion (vppagent.services).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .common import ANNOTATION_PREFIX, ObjectKey, Protocol
from .fields import EMPTY_MAP, FrozenMap, IPAddress, Reader, read_metadata

DEFAULT_AFFINITY_TIMEOUT_S = 10800  # the API server's default for ClientIP
MAX_AFFINITY_TIMEOUT_S = 86400


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"
    EXTERNAL_NAME = "ExternalName"


class TrafficPolicy(StrEnum):
    CLUSTER = "Cluster"
    LOCAL = "Local"


class SessionAffinity(StrEnum):
    NONE = "None"
    CLIENT_IP = "ClientIP"


@dataclass(frozen=True)
class ServicePort:
    name: str
    protocol: Protocol
    port: int
    target_port: int | str  # a number, or the name of a container port
    node_port: int | None = None


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    uid: str = ""
    type: ServiceType = ServiceType.CLUSTER_IP
    cluster_ips: tuple[IPAddress, ...] = ()  # empty when headless or ExternalName
    headless: bool = False
    ports: tuple[ServicePort, ...] = ()
    external_ips: tuple[IPAddress, ...] = ()
    lb_ingress_ips: tuple[IPAddress, ...] = ()
    session_affinity: SessionAffinity = SessionAffinity.NONE
    session_affinity_timeout_s: int | None = None  # set only for ClientIP
    external_traffic_policy: TrafficPolicy = TrafficPolicy.CLUSTER
    internal_traffic_policy: TrafficPolicy = TrafficPolicy.CLUSTER
    labels: FrozenMap = EMPTY_MAP
    annotations: FrozenMap = EMPTY_MAP  # vppagent.io/* only

    KIND = "Service"

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.KIND, self.namespace, self.name)


def _ports(r: Reader, spec: Mapping[str, Any]) -> tuple[ServicePort, ...]:
    out: list[ServicePort] = []
    for i, raw in enumerate(r.items(spec.get("ports"), "spec.ports")):
        path = f"spec.ports[{i}]"
        raw = r.mapping(raw, path)
        port = r.port(raw.get("port"), f"{path}.port")
        target = raw.get("targetPort")
        node_port = raw.get("nodePort")
        out.append(
            ServicePort(
                name=r.string(raw.get("name"), f"{path}.name"),
                protocol=r.enum(raw.get("protocol"), f"{path}.protocol", Protocol, default=Protocol.TCP),
                port=port,
                # An absent (or zero) targetPort means "same as port".
                target_port=port if target in (None, 0, "") else r.int_or_name(target, f"{path}.targetPort"),
                node_port=None if node_port in (None, 0) else r.port(node_port, f"{path}.nodePort"),
            )
        )
    return tuple(out)


def _cluster_ips(r: Reader, spec: Mapping[str, Any]) -> tuple[tuple[IPAddress, ...], bool]:
    raw = r.items(spec.get("clusterIPs"), "spec.clusterIPs")
    field = "spec.clusterIPs"
    if not raw and spec.get("clusterIP"):
        raw, field = [spec["clusterIP"]], "spec.clusterIP"
    if raw == ["None"]:
        return (), True
    return tuple(r.ip(ip, f"{field}[{i}]") for i, ip in enumerate(raw)), False


def service_from_api(obj: Mapping[str, Any]) -> Service:
    """Build a Service from the API's JSON (a dict); raises InvalidObject."""
    r, meta = read_metadata(Service.KIND, obj, namespaced=True)
    spec = r.mapping(obj.get("spec"), "spec")
    status = r.mapping(obj.get("status"), "status")
    svc_type = r.enum(spec.get("type"), "spec.type", ServiceType, default=ServiceType.CLUSTER_IP)

    cluster_ips, headless = ((), False) if svc_type is ServiceType.EXTERNAL_NAME else _cluster_ips(r, spec)

    ingress_ips: list[IPAddress] = []
    lb = r.mapping(status.get("loadBalancer"), "status.loadBalancer")
    for i, ing in enumerate(r.items(lb.get("ingress"), "status.loadBalancer.ingress")):
        ing = r.mapping(ing, f"status.loadBalancer.ingress[{i}]")
        if ing.get("ip"):  # hostname-only ingresses (AWS ELB) carry no IP to program
            ingress_ips.append(r.ip(ing["ip"], f"status.loadBalancer.ingress[{i}].ip"))

    affinity = r.enum(spec.get("sessionAffinity"), "spec.sessionAffinity", SessionAffinity,
                      default=SessionAffinity.NONE)
    timeout: int | None = None
    if affinity is SessionAffinity.CLIENT_IP:
        cfg = r.mapping(spec.get("sessionAffinityConfig"), "spec.sessionAffinityConfig")
        client_ip = r.mapping(cfg.get("clientIP"), "spec.sessionAffinityConfig.clientIP")
        raw_timeout = client_ip.get("timeoutSeconds")
        timeout = DEFAULT_AFFINITY_TIMEOUT_S if raw_timeout is None else r.integer(
            raw_timeout, "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
            lo=1, hi=MAX_AFFINITY_TIMEOUT_S,
        )

    return Service(
        namespace=r.namespace,
        name=r.name,
        uid=r.string(meta.get("uid"), "metadata.uid"),
        type=svc_type,
        cluster_ips=cluster_ips,
        headless=headless,
        ports=_ports(r, spec),
        external_ips=tuple(
            r.ip(ip, f"spec.externalIPs[{i}]")
            for i, ip in enumerate(r.items(spec.get("externalIPs"), "spec.externalIPs"))
        ),
        lb_ingress_ips=tuple(ingress_ips),
        session_affinity=affinity,
        session_affinity_timeout_s=timeout,
        external_traffic_policy=r.enum(spec.get("externalTrafficPolicy"), "spec.externalTrafficPolicy",
                                       TrafficPolicy, default=TrafficPolicy.CLUSTER),
        internal_traffic_policy=r.enum(spec.get("internalTrafficPolicy"), "spec.internalTrafficPolicy",
                                       TrafficPolicy, default=TrafficPolicy.CLUSTER),
        labels=r.str_map(meta.get("labels"), "metadata.labels"),
        annotations=r.str_map(meta.get("annotations"), "metadata.annotations", (ANNOTATION_PREFIX,)),
    )
