"""Service expansion: one Service and its EndpointSlices -> the cnat translations that serve it.

Owns the Kubernetes semantics of service load balancing, as pure functions
of model objects (no I/O):

- which VIPs a Service has: its cluster IPs (port = the service port), this
  node's addresses (port = the nodePort; NodePort and LoadBalancer types),
  its LoadBalancer ingress IPs and externalIPs (port = the service port);
- which endpoints back each VIP: the slices of the VIP's family, at the
  slice's port for the service port's name and protocol (so a named
  targetPort resolves per endpoint: pods that number it differently are in
  different slices); ready endpoints, and only when none is ready, the
  serving-and-terminating ones (KEP-1669); ``internalTrafficPolicy: Local``
  (cluster IPs) and ``externalTrafficPolicy: Local`` (node ports, external
  and LoadBalancer IPs) keep the endpoints on this node only;
- how: ``vppagent.io/lb`` = ``hash`` (default) or ``maglev``; the flow hash
  from the configured fields, or the client's source address only for
  ``sessionAffinity: ClientIP`` (cnat has no affinity table, so the
  timeout is not honoured: a client sticks to its backend as long as the
  backend set is unchanged, and with maglev mostly beyond);
- what it refuses, as Problems (the Service is skipped, nothing else is):
  an invalid IP, a port outside 1..65535, a protocol cnat does not carry;
  VIPs the agent does not own (outside the service / external CIDRs, a
  nodePort outside the range) are skipped alone; an invalid endpoint is
  skipped alone.

Must not touch: VPP, the reconciler's state, the cluster state.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vppagent.model.k8s import (
    AddressType,
    EndpointSlice,
    Protocol as L4Protocol,
    Service,
    ServicePort,
    ServiceType,
    SessionAffinity,
    TrafficPolicy,
)
from vppagent.reconcile import Problem
from vppagent.vpp import cnat
from vppagent.iptypes import IpAddress, IpNetwork

from .translation_kind import Backend, ServiceTranslation


LB_ANNOTATION = "vppagent.io/lb"
LB_MODES = {"hash": cnat.LbType.DEFAULT, "maglev": cnat.LbType.MAGLEV}

PROTOCOLS = {L4Protocol.TCP: cnat.Proto.TCP, L4Protocol.UDP: cnat.Proto.UDP, L4Protocol.SCTP: cnat.Proto.SCTP}

# ip_flow_hash_config bits (VPP's API and its data plane use the same values).
HASH_BITS = {"src-ip": 0x1, "dst-ip": 0x2, "src-port": 0x4, "dst-port": 0x8, "proto": 0x10}
AFFINITY_HASH = HASH_BITS["src-ip"]


def flow_hash_of(fields: Iterable[str]) -> int:
    """The ip_flow_hash_config of configured field names (config.HASH_FIELDS)."""
    out = 0
    for f in fields:
        try:
            out |= HASH_BITS[f]
        except KeyError:
            raise ValueError(f"unknown hash field {f!r}; known: {', '.join(HASH_BITS)}") from None
    return out


@dataclass(frozen=True)
class Scope:
    """What this agent programs and owns, and where it runs."""

    service_cidrs: tuple[IpNetwork, ...]
    external_cidrs: tuple[IpNetwork, ...] = ()
    node_port_range: tuple[int, int] = (30000, 32767)
    node_name: str = ""
    node_ips: tuple[IpAddress, ...] = ()  # this node's addresses: the NodePort VIPs
    flow_hash: int = 0  # 0: VPP's default

    def owns_cluster_ip(self, ip: IpAddress) -> bool:
        return _inside(ip, self.service_cidrs)

    def owns_external_ip(self, ip: IpAddress) -> bool:
        return _inside(ip, self.external_cidrs)

    def is_node_address(self, ip: IpAddress) -> bool:
        return ip in self.node_ips

    def owns(self, vip: IpAddress, port: int) -> bool:
        """Is a cnat translation on ``vip``:``port`` the agent's (see translations.py)."""
        if self.owns_cluster_ip(vip) or self.owns_external_ip(vip):
            return True
        lo, hi = self.node_port_range
        return vip in self.node_ips and lo <= port <= hi


def _inside(ip: IpAddress, nets: Sequence[IpNetwork]) -> bool:
    return any(ip.version == n.version and ip in n for n in nets)


def _family(ip: IpAddress) -> AddressType:
    return AddressType.IPV4 if ip.version == 4 else AddressType.IPV6


def _is_ip(v: object) -> bool:
    return isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address))


def _valid_port(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65535


def _invalid(svc: Service) -> str | None:
    """Why a Service cannot be programmed at all, or None."""
    for ip in (*svc.cluster_ips, *svc.external_ips, *svc.lb_ingress_ips):
        if not _is_ip(ip):
            return f"{ip!r} is not an IP address"
    for sp in svc.ports:
        if not _valid_port(sp.port):
            return f"port {sp.name or '(unnamed)'} is {sp.port!r}, not in 1..65535"
        if sp.node_port is not None and not _valid_port(sp.node_port):
            return f"nodePort of port {sp.name or '(unnamed)'} is {sp.node_port!r}, not in 1..65535"
        if sp.protocol not in PROTOCOLS:
            return (f"port {sp.name or '(unnamed)'} has protocol {sp.protocol!r}; "
                    "only TCP, UDP and SCTP are load-balanced")
    return None


def lb_type_of(svc: Service) -> tuple[cnat.LbType, Problem | None]:
    raw = svc.annotations.get(LB_ANNOTATION) if svc.annotations else None
    if raw is None:
        return cnat.LbType.DEFAULT, None
    mode = LB_MODES.get(str(raw).strip().lower())
    if mode is None:
        return cnat.LbType.DEFAULT, Problem(
            svc.key, "InvalidLoadBalancingMode",
            f"annotation {LB_ANNOTATION}={raw!r} is not one of {', '.join(LB_MODES)}; using hash")
    return mode, None


def select_backends(slices: Iterable[EndpointSlice], sp: ServicePort, family: AddressType,
                    local_to: str | None) -> tuple[list[Backend], list[Problem]]:
    """The backends of ``sp`` in ``family``: ready endpoints, else serving+terminating ones
    (KEP-1669); only those on node ``local_to`` when it is set."""
    # Keyed by (family, address, port): cheaper than hashing Backends.
    ready: dict[tuple[int, int, int], Backend] = {}
    terminating: dict[tuple[int, int, int], Backend] = {}
    problems: list[Problem] = []
    for s in slices:
        if s.address_type is not family:
            continue
        port = next((p.port for p in s.ports if p.name == sp.name and p.protocol is sp.protocol), None)
        if port is None:
            continue
        if not _valid_port(port):
            problems.append(Problem(s.key, "InvalidEndpointPort",
                                    f"port {sp.name or '(unnamed)'} is {port!r}, not in 1..65535; skipped"))
            continue
        for ep in s.endpoints:
            if not ep.addresses:
                continue
            if local_to is not None and ep.node_name != local_to:
                continue
            addr = ep.addresses[0]  # kube-proxy semantics: the first address
            if not _is_ip(addr) or _family(addr) is not family:
                problems.append(Problem(s.key, "InvalidEndpointAddress",
                                        f"endpoint address {addr!r} is not an {family.value} address; skipped"))
                continue
            if ep.ready:
                ready[(addr.version, int(addr), port)] = Backend(addr, port)
            elif ep.serving and ep.terminating:
                terminating[(addr.version, int(addr), port)] = Backend(addr, port)
    chosen = ready or terminating
    return [chosen[k] for k in sorted(chosen)], problems


def expand(svc: Service, slices: Iterable[EndpointSlice],
           scope: Scope) -> tuple[list[ServiceTranslation], list[Problem]]:
    """The translations of one Service (see the module docstring), and what could not be programmed."""
    if svc.type is ServiceType.EXTERNAL_NAME or svc.headless or not svc.cluster_ips:
        return [], []
    why = _invalid(svc)
    if why is not None:
        return [], [Problem(svc.key, "InvalidService", f"{why}; the Service is not programmed")]
    slices = tuple(slices)
    problems: list[Problem] = []
    lb_type, lb_problem = lb_type_of(svc)
    if lb_problem is not None:
        problems.append(lb_problem)
    flow_hash = AFFINITY_HASH if svc.session_affinity is SessionAffinity.CLIENT_IP else scope.flow_hash
    itp_local = scope.node_name if svc.internal_traffic_policy is TrafficPolicy.LOCAL else None
    etp_local = scope.node_name if svc.external_traffic_policy is TrafficPolicy.LOCAL else None

    # (VIPs, port of a service port, locality, is_real_ip) groups.
    cluster_vips = []
    for ip in svc.cluster_ips:
        if scope.owns_cluster_ip(ip):
            cluster_vips.append(ip)
        else:
            problems.append(Problem(svc.key, "ClusterIPOutsideServiceCIDRs",
                                    f"cluster IP {ip} is outside the service CIDRs "
                                    f"({_text(scope.service_cidrs)}) this agent owns; not programmed"))
    external_vips = []
    for ip in (*svc.lb_ingress_ips, *svc.external_ips):
        if scope.owns_external_ip(ip):
            if ip not in external_vips:
                external_vips.append(ip)
        else:
            problems.append(Problem(svc.key, "ExternalIPOutsideExternalCIDRs",
                                    f"external/LoadBalancer IP {ip} is outside the external CIDRs "
                                    f"({_text(scope.external_cidrs)}) this agent owns; not programmed"))
    node_ports = svc.type in (ServiceType.NODE_PORT, ServiceType.LOAD_BALANCER)

    out: dict[tuple, ServiceTranslation] = {}
    memo: dict[tuple, list[Backend]] = {}

    def backends(sp: ServicePort, family: AddressType, local: str | None) -> list[Backend]:
        k = (sp.name, sp.protocol, family, local)
        if k not in memo:
            memo[k], probs = select_backends(slices, sp, family, local)
            problems.extend(p for p in probs if p not in problems)
        return memo[k]

    def add(vip: IpAddress, sp: ServicePort, port: int, local: str | None, real: bool) -> None:
        found = backends(sp, _family(vip), local)
        proto = PROTOCOLS[sp.protocol]
        # VPP 26.06 cannot hold a translation without a path (it crashes):
        # a VIP without backends has none (see the README for what that means).
        if found and (vip, int(proto), port) not in out:
            out[(vip, int(proto), port)] = ServiceTranslation(vip, proto, port, tuple(found), lb_type,
                                                              is_real_ip=real, flow_hash=flow_hash)

    lo, hi = scope.node_port_range
    for sp in svc.ports:
        for ip in cluster_vips:
            add(ip, sp, sp.port, itp_local, False)
        for ip in external_vips:
            add(ip, sp, sp.port, etp_local, scope.is_node_address(ip))
        if node_ports and sp.node_port is not None:
            if not lo <= sp.node_port <= hi:
                problems.append(Problem(svc.key, "NodePortOutsideRange",
                                        f"nodePort {sp.node_port} is outside the NodePort range {lo}-{hi}; "
                                        "not programmed"))
                continue
            for ip in scope.node_ips:
                if any(ip.version == c.version for c in svc.cluster_ips):
                    add(ip, sp, sp.node_port, etp_local, True)
    return list(out.values()), problems


def _text(nets: Sequence[IpNetwork]) -> str:
    return ", ".join(map(str, nets)) or "none"
