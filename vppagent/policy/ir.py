"""The policy IR: what the compiler emits and every evaluator consumes.

Owns: the frozen value types shared by the NetworkPolicy compiler, the Python
reference evaluator, the C core (through its API) and the agent: ipsets
(hash of addresses, LPM of prefixes, address+port), rules over set names,
per-direction and per-pod policies, packets and verdicts.

Semantics (normative for every evaluator):

- Ingress to pod P: peer = packet.src, port = packet.dport.
  Egress from P: peer = packet.dst, port = packet.dport.
- A packet matches a rule iff
  ((peers is None or peer in any set named by peers) and
   (not ports or (proto, dport) in any range)) or
  (peer, proto, dport) is in any set named by peer_ports.
- A range matches a proto iff its proto is 0 (any) or equal; lo=0, hi=65535
  is every port. Protocols without ports (ICMP, ...) carry port 0.
- DirectionPolicy None: not isolated, allow all. Otherwise default deny unless
  some rule matches (the first matching rule's index is reported).
- NetSet membership is longest-prefix match: an address is a member iff the
  longest prefix covering it is an ``include`` (ipBlock cidr minus except).

Must not touch: Kubernetes objects (the compiler), VPP (the vpp layer).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from vppagent.iptypes import IpAddress, IpNetwork


PROTO_ANY = 0
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP6 = 58
PROTO_SCTP = 132
PORT_MIN = 0
PORT_MAX = 65535


class SetKind(IntEnum):
    ADDR = 1
    NET = 2
    ADDR_PORT = 3


@dataclass(frozen=True)
class PortRange:
    """proto 6/17/132, 0 = any proto; lo=0, hi=65535 = any port (inclusive)."""

    proto: int
    lo: int
    hi: int


@dataclass(frozen=True)
class AddrSet:
    """Exact addresses (hash lookup, O(1))."""

    name: str
    members: frozenset[IpAddress]

    kind = SetKind.ADDR


@dataclass(frozen=True)
class NetSet:
    """Prefixes; member iff the longest matching prefix is an include."""

    name: str
    include: tuple[IpNetwork, ...]
    exclude: tuple[IpNetwork, ...]

    kind = SetKind.NET


@dataclass(frozen=True)
class AddrPortSet:
    """(addr, proto, port) triples: named ports resolved per peer pod."""

    name: str
    members: frozenset[tuple[IpAddress, int, int]]

    kind = SetKind.ADDR_PORT


IpSet = AddrSet | NetSet | AddrPortSet


@dataclass(frozen=True)
class Rule:
    peers: tuple[str, ...] | None  # names of AddrSet/NetSet; None = any peer; () = matches nothing
    ports: tuple[PortRange, ...]  # () = any proto/port
    peer_ports: tuple[str, ...] = ()  # names of AddrPortSet: alternative match on (peer, proto, dport)


@dataclass(frozen=True)
class DirectionPolicy:
    """Isolated direction: default deny unless a rule matches."""

    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class PodPolicy:
    ingress: DirectionPolicy | None  # None = not isolated for ingress: allow all
    egress: DirectionPolicy | None


@dataclass(frozen=True)
class Packet:
    src: IpAddress
    dst: IpAddress
    proto: int
    sport: int
    dport: int


class Direction(StrEnum):
    """Which side of pod P a packet is evaluated on (compares equal to the plain strings)."""

    INGRESS = "ingress"
    EGRESS = "egress"


class Reason(StrEnum):
    RULE = "rule"
    DEFAULT_DENY = "default-deny"
    NOT_ISOLATED = "not-isolated"
    REPLY = "reply"
    TABLE_FULL = "table-full"  # the data plane's flow table was full: a new flow is dropped


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule_index: int  # -1 unless reason is "rule"
    reason: str  # one of Reason's values


__all__ = [
    "AddrPortSet", "AddrSet", "Direction", "DirectionPolicy", "IpAddress", "IpNetwork", "IpSet",
    "NetSet", "PORT_MAX", "PORT_MIN", "PROTO_ANY", "PROTO_ICMP", "PROTO_ICMP6", "PROTO_SCTP",
    "PROTO_TCP", "PROTO_UDP", "Packet", "PodPolicy", "PortRange", "Reason", "Rule", "SetKind",
    "Verdict",
]
