"""Network policy on stock VPP: the ACL plugin instead of kpol.

Owns: expanding a pod's ``PodPolicy`` (rules over ipsets) into reflexive
ACL rules. The reconciler kinds that carry them into VPP are ``acl_kind``'s.

Mapping: VPP's *input* ACL of a pod interface sees what the pod sends (its
egress), the *output* ACL what it receives (its ingress). Every allowed
flow is ``permit+reflect``, so the ACL plugin lets its replies back in; an
isolated direction ends with the plugin's implicit deny. A direction that is
not isolated while the other is gets ``permit+reflect`` everything, so
replies to flows the pod accepted (or opened) are tracked and pass.

Costs, why kpol exists: ipsets are expanded (peers x ports), NetSets with
excepts become the prefixes left after subtracting them, a port range
without protocol becomes TCP, UDP and SCTP, and any membership change
rewrites the affected ACLs whole (``acl_add_replace`` in place). Named
ports resolved per peer become one rule per (peer, port).

Must not touch: kpol objects (``kpol_kind``), the compiler.
"""
from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from vppagent.vpp import acl
from vppagent.vpp.acl import Action, Rule as AclRule

from .ir import (
    PORT_MAX,
    PORT_MIN,
    PROTO_SCTP,
    PROTO_TCP,
    PROTO_UDP,
    AddrPortSet,
    AddrSet,
    DirectionPolicy,
    IpNetwork,
    IpSet,
    NetSet,
    PodPolicy,
    PortRange,
)

log = logging.getLogger(__name__)

_ANY = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
_PORT_PROTOS = (PROTO_TCP, PROTO_UDP, PROTO_SCTP)


class PolicyExpansionError(ValueError):
    """A policy names a set the snapshot does not hold (a compiler bug, reported, never widened)."""


# -- expansion ------------------------------------------------------------------------------------


def net_prefixes(include: Iterable[IpNetwork], exclude: Iterable[IpNetwork]) -> list[IpNetwork]:
    """Disjoint prefixes covering exactly the addresses whose longest match is an include."""
    marks: dict[IpNetwork, bool] = {}
    for n in include:
        marks.setdefault(n, True)
    for n in exclude:
        marks[n] = False  # on the same prefix, the except wins (ir.py)
    nets = list(marks)

    def inside(a: IpNetwork, b: IpNetwork) -> bool:
        return a != b and a.version == b.version and a.subnet_of(b)  # type: ignore[arg-type]

    def kids(n: IpNetwork) -> list[IpNetwork]:
        under = [c for c in nets if inside(c, n)]
        return [c for c in under if not any(inside(c, o) for o in under)]

    def expand(n: IpNetwork) -> list[IpNetwork]:
        ks = kids(n)
        out: list[IpNetwork] = []
        if marks[n]:
            pieces = [n]
            for k in ks:
                pieces = [q for p in pieces for q in (p.address_exclude(k) if k.subnet_of(p) and k != p  # type: ignore
                                                      else ([] if k == p else [p]))]
            out += pieces
        for k in ks:
            out += expand(k)
        return out

    top = [n for n in nets if not any(inside(n, o) for o in nets)]
    result = [p for n in top for p in expand(n)]
    return sorted(result, key=lambda p: (p.version, int(p.network_address), p.prefixlen))


def _host(addr: Any) -> IpNetwork:
    return ipaddress.ip_network(addr)


def _peer_prefixes(names: Iterable[str], sets: Mapping[str, IpSet]) -> list[IpNetwork]:
    out: list[IpNetwork] = []
    for n in names:
        s = sets.get(n)
        if s is None:
            raise PolicyExpansionError(f"policy names set {n}, which the snapshot lacks")
        if isinstance(s, AddrSet):
            out += [_host(a) for a in s.members]
        elif isinstance(s, NetSet):
            out += net_prefixes(s.include, s.exclude)
    return out


def _port_specs(ports: tuple[PortRange, ...]) -> list[tuple[int, int, int]]:
    """(proto, lo, hi); proto 0 only with every port (the ACL plugin ignores ports then)."""
    if not ports:
        return [(0, PORT_MIN, PORT_MAX)]
    out = []
    for p in ports:
        if p.proto == 0 and (p.lo, p.hi) == (PORT_MIN, PORT_MAX):
            out.append((0, PORT_MIN, PORT_MAX))
        elif p.proto == 0:
            out += [(proto, p.lo, p.hi) for proto in _PORT_PROTOS]
        else:
            out.append((p.proto, p.lo, p.hi))
    return out


def _rule(ingress: bool, peer: IpNetwork, proto: int, lo: int, hi: int) -> AclRule:
    anywhere = _ANY[0] if peer.version == 4 else _ANY[1]
    src, dst = (peer, anywhere) if ingress else (anywhere, peer)
    return AclRule(Action.PERMIT_REFLECT, src, dst, proto, acl.ANY_PORT, acl.PortRange(lo, hi))


def direction_rules(dp: DirectionPolicy, ingress: bool, sets: Mapping[str, IpSet]) -> tuple[AclRule, ...]:
    """The permit+reflect rules of one isolated direction (deduplicated, in rule order)."""
    out: dict[AclRule, None] = {}
    for rule in dp.rules:
        peers = list(_ANY) if rule.peers is None else _peer_prefixes(rule.peers, sets)
        for peer in peers:
            for proto, lo, hi in _port_specs(rule.ports):
                out[_rule(ingress, peer, proto, lo, hi)] = None
        for n in rule.peer_ports:
            s = sets.get(n)
            if not isinstance(s, AddrPortSet):
                raise PolicyExpansionError(f"policy names address+port set {n}, which the snapshot lacks")
            for addr, proto, port in sorted(s.members, key=lambda t: (t[0].version, int(t[0]), t[1], t[2])):
                out[_rule(ingress, _host(addr), proto, port, port)] = None
    return tuple(out)


def _allow_all() -> tuple[AclRule, ...]:
    return tuple(AclRule(Action.PERMIT_REFLECT, n, n) for n in _ANY)


def pod_acls(policy: PodPolicy, sets: Mapping[str, IpSet]) -> tuple[tuple[AclRule, ...], tuple[AclRule, ...]]:
    """(input rules, output rules) of a pod isolated in at least one direction."""
    egress = direction_rules(policy.egress, False, sets) if policy.egress else _allow_all()
    ingress = direction_rules(policy.ingress, True, sets) if policy.ingress else _allow_all()
    return egress, ingress


__all__ = ["PolicyExpansionError", "direction_rules", "net_prefixes", "pod_acls"]
