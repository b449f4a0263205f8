"""kpol: our Kubernetes network-policy plugin (vpp_plugins/kpol), typed.

Owns the typed calls on kpol's binary API: ipsets and their members
(batched, all or nothing), policies as flat item lists, interface
attachments, and the dumps (sets, policies, attachments, per-rule counters,
flow-table stats). Translating IR rules to items and back lives here too,
because the item list is the API's encoding, not a policy concept.
Must not: compile NetworkPolicies (``policy/compiler``), choose ids or
decide what VPP should hold (``policy/kpol_kind``).

The plugin is not part of stock VPP: ``available(vpp)`` says whether the
connected VPP offers it (callers fall back to the ACL plugin otherwise).
Errors keep VPP's retval and name which object failed; a rejected message
changes nothing (the plugin validates whole messages).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from vppagent.iptypes import IpAddress, U32_NONE

from .client import VppClient
from .plugin_crcs import offers
from .errors import VppApiError, VppApiItemError, VppError
from .retvals import Retval

MESSAGES = (
    "kpol_ipset_add",
    "kpol_ipset_del",
    "kpol_ipset_members_add_del",
    "kpol_policy_set",
    "kpol_policy_del",
    "kpol_interface_attach",
    "kpol_ipset_dump",
    "kpol_policy_dump",
    "kpol_interface_dump",
    "kpol_counters_dump",
    "kpol_flow_stats",
)

ALL = U32_NONE
MAX_SET_ID = 1 << 20  # kpol_core.h KP_MAX_SET_ID
MAX_POLICY_ID = 1 << 20
MAX_BATCH = 1 << 20  # members or items per message (kpol.c KPOL_MAX_BATCH)


class SetKind(IntEnum):
    ADDR = 1
    NET = 2
    ADDR_PORT = 3


class ItemType(IntEnum):
    RULE = 0
    PEER = 1
    PORTS = 2
    PEER_PORT = 3


class Dir(IntEnum):
    INGRESS = 0
    EGRESS = 1


class KpolError(VppError):
    """A kpol request that cannot be sent as asked (bad id, oversized batch)."""


class KpolUnavailableError(KpolError):
    """The connected VPP does not offer the kpol plugin's messages."""


@dataclass
class KpolMembersError(VppApiItemError):
    """A member batch VPP refused; ``failed_at`` is the index of the member it refused."""


@dataclass(frozen=True)
class Member:
    """One ipset member: an address (ADDR), a prefix (NET, ``exclude`` for an except), or
    address+proto+port (ADDR_PORT). ``plen`` is the full length for non-NET kinds."""

    addr: IpAddress
    plen: int = -1  # -1: the address's full length
    exclude: bool = False
    proto: int = 0
    port: int = 0

    def __post_init__(self) -> None:
        full = self.addr.max_prefixlen
        if self.plen == -1:
            object.__setattr__(self, "plen", full)
        if not 0 <= self.plen <= full:
            raise ValueError(f"prefix length {self.plen} out of range for {self.addr}")
        if not 0 <= self.proto <= 255 or not 0 <= self.port <= 65535:
            raise ValueError(f"bad proto/port {self.proto}/{self.port} for {self.addr}")

    @property
    def sort_key(self) -> tuple:
        return (self.addr.version, int(self.addr), self.plen, self.exclude, self.proto, self.port)

    @staticmethod
    def net(prefix: str | ipaddress.IPv4Network | ipaddress.IPv6Network, exclude: bool = False) -> "Member":
        n = ipaddress.ip_network(prefix)
        return Member(n.network_address, n.prefixlen, exclude)


@dataclass(frozen=True)
class Item:
    """One entry of a policy's flat item list (see kpol.api ``kpol_item``)."""

    type: ItemType
    dir: Dir = Dir.INGRESS
    any_peer: bool = False
    proto: int = 0
    lo: int = 0
    hi: int = 0
    set_id: int = 0


@dataclass(frozen=True)
class IpSetInfo:
    set_id: int
    kind: SetKind
    members: frozenset[Member]


@dataclass(frozen=True)
class PolicyInfo:
    policy_id: int
    ingress_isolated: bool
    egress_isolated: bool
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Counters:
    """counts[0]: default-deny drops; counts[1 + i]: packets allowed by rule i."""

    policy_id: int
    dir: Dir
    counts: tuple[int, ...]

    @property
    def denied(self) -> int:
        return self.counts[0] if self.counts else 0

    @property
    def allowed_by_rule(self) -> tuple[int, ...]:
        return self.counts[1:]


@dataclass(frozen=True)
class FlowStats:
    flows: int
    flows_created: int
    flow_hits: int
    reply_hits: int
    expired: int
    table_full: int
    reevaluated: int


def available(vpp: VppClient) -> bool:
    """Whether the connected VPP offers every kpol message with the pinned CRCs."""
    return offers(vpp, MESSAGES)


def _check_id(what: str, value: int, limit: int) -> None:
    if not 0 <= value < limit:
        raise KpolError(f"{what} {value} out of range 0..{limit - 1}")


def _api_member(m: Member) -> dict:
    return {"addr": m.addr, "plen": m.plen, "exclude": m.exclude, "proto": m.proto, "port": m.port}


def _member(d) -> Member:
    addr = ipaddress.ip_address(d.addr)
    return Member(addr, int(d.plen), bool(d.exclude), int(d.proto), int(d.port))


def _api_item(i: Item) -> dict:
    return {"type": int(i.type), "dir": int(i.dir), "any_peer": i.any_peer, "proto": i.proto,
            "lo": i.lo, "hi": i.hi, "set_id": i.set_id}


def _item(d) -> Item:
    return Item(ItemType(int(d.type)), Dir(int(d.dir)), bool(d.any_peer), int(d.proto), int(d.lo),
                int(d.hi), int(d.set_id))


# -- sets --------------------------------------------------------------------------------


def ipset_add(vpp: VppClient, set_id: int, kind: SetKind) -> None:
    _check_id("set id", set_id, MAX_SET_ID)
    vpp.call("kpol_ipset_add", set_id=set_id, kind=int(kind))


def ipset_del(vpp: VppClient, set_id: int) -> None:
    """Delete a set (refused with INSTANCE_IN_USE while a policy names it)."""
    vpp.call("kpol_ipset_del", set_id=set_id)


def members_request(set_id: int, members: Sequence[Member], is_add: bool) -> tuple[str, dict]:
    """The request adding/removing ``members`` in one message (for ``VppClient.bulk`` too)."""
    if len(members) > MAX_BATCH:
        raise KpolError(f"{len(members)} members in one batch; kpol takes at most {MAX_BATCH}")
    return "kpol_ipset_members_add_del", {"set_id": set_id, "is_add": is_add, "n_members": len(members),
                                          "members": [_api_member(m) for m in members]}


def members_add_del(vpp: VppClient, set_id: int, members: Iterable[Member], is_add: bool) -> None:
    """Add (or delete) every member, all or nothing. Raises KpolMembersError naming the member."""
    ms = sorted(members, key=lambda m: m.sort_key)
    if not ms:
        return
    name, fields = members_request(set_id, ms, is_add)
    reply = vpp.call(name, check=False, **fields)
    if reply.retval != 0:
        bad = int(reply.failed_at)
        who = ms[bad] if 0 <= bad < len(ms) else None
        raise KpolMembersError(name, reply.retval,
                               {"set_id": set_id, "is_add": is_add, "n_members": len(ms),
                                "member": str(who) if who else "?"},
                               bad if who else -1)


def members_add(vpp: VppClient, set_id: int, members: Iterable[Member]) -> None:
    members_add_del(vpp, set_id, members, True)


def members_del(vpp: VppClient, set_id: int, members: Iterable[Member]) -> None:
    members_add_del(vpp, set_id, members, False)


def dump_ipsets(vpp: VppClient, set_id: int = ALL) -> list[IpSetInfo]:
    return [IpSetInfo(d.set_id, SetKind(int(d.kind)), frozenset(_member(m) for m in d.members[: d.n_members]))
            for d in vpp.dump("kpol_ipset_dump", set_id=set_id)]


# -- policies ----------------------------------------------------------------------------


def policy_set(vpp: VppClient, policy_id: int, ingress_isolated: bool, egress_isolated: bool,
               items: Sequence[Item]) -> None:
    """Create or replace a policy (its counters restart at zero)."""
    _check_id("policy id", policy_id, MAX_POLICY_ID)
    if len(items) > MAX_BATCH:
        raise KpolError(f"{len(items)} items in one policy; kpol takes at most {MAX_BATCH}")
    vpp.call("kpol_policy_set", policy_id=policy_id, ingress_isolated=ingress_isolated,
             egress_isolated=egress_isolated, n_items=len(items), items=[_api_item(i) for i in items])


def policy_del(vpp: VppClient, policy_id: int) -> None:
    """Delete a policy (refused with INSTANCE_IN_USE while attached)."""
    vpp.call("kpol_policy_del", policy_id=policy_id)


def dump_policies(vpp: VppClient, policy_id: int = ALL) -> list[PolicyInfo]:
    return [PolicyInfo(d.policy_id, bool(d.ingress_isolated), bool(d.egress_isolated),
                       tuple(_item(i) for i in d.items[: d.n_items]))
            for d in vpp.dump("kpol_policy_dump", policy_id=policy_id)]


# -- attachments ---------------------------------------------------------------------------


def attach(vpp: VppClient, sw_if_index: int, policy_id: int) -> None:
    """Attach a policy to an interface (replacing the one attached, if any)."""
    vpp.call("kpol_interface_attach", sw_if_index=sw_if_index, policy_id=policy_id, is_add=True)


def detach(vpp: VppClient, sw_if_index: int, *, missing_ok: bool = False) -> None:
    try:
        vpp.call("kpol_interface_attach", sw_if_index=sw_if_index, policy_id=0, is_add=False)
    except VppApiError as e:
        if not (missing_ok and e.retval in (Retval.NO_SUCH_ENTRY, Retval.INVALID_SW_IF_INDEX)):
            raise


def attachments(vpp: VppClient) -> dict[int, int]:
    """sw_if_index -> attached policy id."""
    return {d.sw_if_index: d.policy_id for d in vpp.dump("kpol_interface_dump")}


# -- counters ------------------------------------------------------------------------------


def counters(vpp: VppClient, policy_id: int = ALL) -> list[Counters]:
    return [Counters(d.policy_id, Dir(int(d.dir)), tuple(int(c) for c in d.counts[: d.n_counts]))
            for d in vpp.dump("kpol_counters_dump", policy_id=policy_id)]


def flow_stats(vpp: VppClient) -> FlowStats:
    r = vpp.call("kpol_flow_stats")
    return FlowStats(r.flows, r.flows_created, r.flow_hits, r.reply_hits, r.expired, r.table_full,
                     r.reevaluated)


__all__ = ["ALL", "Counters", "Dir", "FlowStats", "IpSetInfo", "Item", "ItemType", "KpolError",
           "KpolMembersError", "KpolUnavailableError", "MESSAGES", "Member", "PolicyInfo", "SetKind",
           "attach", "attachments", "available", "counters", "detach", "dump_ipsets", "dump_policies",
           "flow_stats", "ipset_add", "ipset_del", "members_add", "members_add_del", "members_del",
           "members_request", "policy_del", "policy_set"]
