"""ACLs: stateless and reflexive L3/L4 rule lists, and their binding to interfaces.

Owns the typed calls on VPP's ACL plugin: create, replace, delete and dump
ACLs (with their tag), and set/dump the input and output ACL lists of an
interface. Must not: compile network policy into rules (``policy/`` does).

VPP semantics worth knowing (26.06):

- ``acl_add_replace`` with index ``~0`` creates; with an index it replaces
  the rules in place (interfaces using the ACL see the new rules at once).
- An ACL bound to an interface cannot be deleted (retvals -142 inbound,
  -143 outbound): unbind first.
- ``acl_interface_set_acl_list`` applies the output list, then the input
  list; a failure of either is reported as retval 1 (VPP folds the error
  with ``||``), and the output list may already be applied.
- Every rule's source and destination must be of the same family, and
  prefixes must have no host bits set.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Iterable, Sequence

from vppagent.iptypes import IpNetwork, U32_NONE

from .client import VppClient

MESSAGES = (
    "acl_add_replace",
    "acl_del",
    "acl_dump",
    "acl_interface_set_acl_list",
    "acl_interface_list_dump",
)

ALL = U32_NONE
NEW = U32_NONE  # acl_index asking VPP to allocate a new ACL
MAX_TAG = 63  # bytes; VPP refuses a 64-byte tag (no room for its NUL)
MAX_ACLS_PER_INTERFACE = 255  # the u8 count of acl_interface_set_acl_list


class Action(IntEnum):
    DENY = 0
    PERMIT = 1
    PERMIT_REFLECT = 2  # permit, and let the return traffic of the session in


@dataclass(frozen=True)
class PortRange:
    """A port range, or for ICMP an ICMP type (source) / code (destination) range."""

    first: int = 0
    last: int = 65535

    def __post_init__(self) -> None:
        if not 0 <= self.first <= self.last <= 65535:
            raise ValueError(f"bad port range {self.first}-{self.last}")


ANY_PORT = PortRange()


@dataclass(frozen=True)
class Rule:
    action: Action
    src: IpNetwork = ipaddress.IPv4Network("0.0.0.0/0")
    dst: IpNetwork = ipaddress.IPv4Network("0.0.0.0/0")
    proto: int = 0  # 0: any protocol (ports are then ignored)
    sport: PortRange = ANY_PORT
    dport: PortRange = ANY_PORT
    tcp_flags_mask: int = 0
    tcp_flags_value: int = 0

    def __post_init__(self) -> None:
        if self.src.version != self.dst.version:
            raise ValueError(f"ACL rule mixes address families: {self.src} -> {self.dst}")

    @staticmethod
    def of(action: Action, src: str | IpNetwork = "0.0.0.0/0", dst: str | IpNetwork | None = None,
           proto: int = 0, sport: PortRange = ANY_PORT, dport: PortRange = ANY_PORT) -> "Rule":
        s = ipaddress.ip_network(src)
        d = ipaddress.ip_network(dst) if dst is not None else ipaddress.ip_network(
            "::/0" if s.version == 6 else "0.0.0.0/0")
        return Rule(action, s, d, proto, sport, dport)


@dataclass(frozen=True)
class Acl:
    index: int
    tag: str
    rules: tuple[Rule, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class InterfaceAcls:
    sw_if_index: int
    input: tuple[int, ...] = ()
    output: tuple[int, ...] = ()


def _check_tag(tag: str) -> None:
    if len(tag.encode()) > MAX_TAG:
        raise ValueError(f"ACL tag longer than {MAX_TAG} bytes: {tag!r}")


def _api_rule(r: Rule) -> dict:
    return {
        "is_permit": int(r.action),
        "src_prefix": r.src,
        "dst_prefix": r.dst,
        "proto": r.proto,
        "srcport_or_icmptype_first": r.sport.first,
        "srcport_or_icmptype_last": r.sport.last,
        "dstport_or_icmpcode_first": r.dport.first,
        "dstport_or_icmpcode_last": r.dport.last,
        "tcp_flags_mask": r.tcp_flags_mask,
        "tcp_flags_value": r.tcp_flags_value,
    }


def _rule(d) -> Rule:
    try:
        action: Action | int = Action(d.is_permit)
    except ValueError:
        action = d.is_permit
    return Rule(
        action=action,  # type: ignore[arg-type]
        src=d.src_prefix,
        dst=d.dst_prefix,
        proto=int(d.proto),
        sport=PortRange(d.srcport_or_icmptype_first, d.srcport_or_icmptype_last),
        dport=PortRange(d.dstport_or_icmpcode_first, d.dstport_or_icmpcode_last),
        tcp_flags_mask=d.tcp_flags_mask,
        tcp_flags_value=d.tcp_flags_value,
    )


def _add_replace(vpp: VppClient, index: int, rules: Sequence[Rule], tag: str) -> int:
    _check_tag(tag)
    api_rules = [_api_rule(r) for r in rules]
    reply = vpp.call("acl_add_replace", acl_index=index, tag=tag, count=len(api_rules), r=api_rules)
    return reply.acl_index


def add_acl(vpp: VppClient, rules: Iterable[Rule], tag: str = "") -> int:
    """Create an ACL; return its index."""
    return _add_replace(vpp, NEW, list(rules), tag)


def replace_acl(vpp: VppClient, index: int, rules: Iterable[Rule], tag: str = "") -> None:
    """Replace the rules (and tag) of an existing ACL, in place."""
    _add_replace(vpp, index, list(rules), tag)


def delete_acl(vpp: VppClient, index: int) -> None:
    vpp.call("acl_del", acl_index=index)


def dump_acls(vpp: VppClient, index: int = ALL) -> list[Acl]:
    return [
        Acl(d.acl_index, d.tag, tuple(_rule(r) for r in d.r))
        for d in vpp.dump("acl_dump", acl_index=index)
    ]


def get_acl(vpp: VppClient, index: int) -> Acl | None:
    found = [a for a in dump_acls(vpp, index) if a.index == index]
    return found[0] if found else None


def by_tag(vpp: VppClient, prefix: str = "") -> dict[str, Acl]:
    """ACLs whose tag starts with ``prefix``, keyed by tag."""
    return {a.tag: a for a in dump_acls(vpp) if a.tag and a.tag.startswith(prefix)}


def set_interface_acls(
    vpp: VppClient, sw_if_index: int, input: Sequence[int] = (), output: Sequence[int] = ()
) -> None:
    """Make ``input``/``output`` the exact ordered ACL lists of the interface."""
    acls = list(input) + list(output)
    if len(acls) > MAX_ACLS_PER_INTERFACE:
        raise ValueError(f"{len(acls)} ACLs on one interface; VPP takes at most {MAX_ACLS_PER_INTERFACE}")
    vpp.call("acl_interface_set_acl_list", sw_if_index=sw_if_index, count=len(acls),
             n_input=len(input), acls=acls)


def clear_interface_acls(vpp: VppClient, sw_if_index: int) -> None:
    set_interface_acls(vpp, sw_if_index)


def interface_acls(vpp: VppClient, sw_if_index: int = ALL) -> list[InterfaceAcls]:
    """The ACL lists of one interface or of all (interfaces without ACLs included)."""
    return [
        InterfaceAcls(d.sw_if_index, tuple(d.acls[: d.n_input]), tuple(d.acls[d.n_input:]))
        for d in vpp.dump("acl_interface_list_dump", sw_if_index=sw_if_index)
    ]
