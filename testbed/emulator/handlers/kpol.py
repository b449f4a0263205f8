"""kpol.api: our network-policy plugin (vpp_plugins/kpol), emulated.

Modelled on vpp_plugins/kpol/kpol.c and its core (kpol_core.c, kp_items.c);
the state and the packet path are the Python reference evaluator
(``policy/reference.ReferenceDataplane``), so the emulator and the C core
share one statement of the semantics. Sets and policies are named there by
their decimal ids.

Validation, each message whole before any change (a refused message changes
nothing), with the plugin's retvals (kpol_api_error):

- ids at or above 2^20 (set, policy): INVALID_VALUE_2; an unknown kind:
  INVALID_VALUE; an existing set: ENTRY_ALREADY_EXISTS; deleting a set a
  policy names: INSTANCE_IN_USE; unknown set/policy/attachment: NO_SUCH_ENTRY.
- members: a NET member with host bits set or a prefix length beyond its
  family: INVALID_VALUE with ``failed_at``, checked before any member is
  applied; a duplicate add or a missing delete: ENTRY_ALREADY_EXISTS /
  NO_SUCH_ENTRY at that member, and the members before it are undone.
- policies: an item list whose first item is not a RULE, a RULE for a
  direction not isolated, an unknown item type, ``any_peer`` with PEER
  items, lo > hi: INVALID_VALUE; a PEER naming an address+port set or a
  PEER_PORT naming another kind: INVALID_VALUE_3; an unknown set:
  NO_SUCH_ENTRY; more than 4096 rules in a direction or 1024 peers, ports
  or peer ports in a rule: INVALID_VALUE_2.
- attach: an unknown interface: INVALID_SW_IF_INDEX; deleting an interface
  detaches it, as the plugin's interface hook does.

Dumps answer in the plugin's order (ids ascending; each rule's peers, then
ports, then peer ports). Counters: ``evaluate()`` is a test-only hook that
runs one packet through an interface's policy, as the plugin's nodes would,
so counters and flow statistics move.

Not modelled: worker threads, flow timeouts beyond the reference model's
clock (``now``), the error-counter paths (/err/kpol-*).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from testbed.policy_reference import PolicyModelError, ReferenceDataplane, canonical
from vppagent.policy.ir import (
    AddrSet,
    Direction,
    DirectionPolicy,
    NetSet,
    Packet,
    PodPolicy,
    PortRange,
    Rule,
    SetKind,
    Verdict,
)
from vppagent.vpp.retvals import Retval

from ..interfaces import Interface
from ..registry import HandlerTable, VppRetval
from ..state import FamilyState
from ._common import NO_INDEX

HANDLERS = HandlerTable("kpol")

INVALID_VALUE_3 = -150
MAX_ID = 1 << 20
MAX_RULES = 4096
MAX_RULE_REFS = 1024
_ITEM_RULE, _ITEM_PEER, _ITEM_PORTS, _ITEM_PEER_PORT = 0, 1, 2, 3
_ERRORS = {"inval": int(Retval.INVALID_VALUE), "noent": int(Retval.NO_SUCH_ENTRY),
           "exists": int(Retval.ENTRY_ALREADY_EXISTS), "busy": int(Retval.INSTANCE_IN_USE),
           "kind": INVALID_VALUE_3}


@dataclass
class KpolState(FamilyState):
    dp: ReferenceDataplane = field(default_factory=lambda: ReferenceDataplane(max_flows=1 << 16))
    flows_created: int = 0
    flow_hits: int = 0
    reply_hits: int = 0
    table_full: int = 0

    def on_interface_deleted(self, state, iface: Interface) -> None:
        self.dp.attached.pop(str(iface.sw_if_index), None)


def _raise(e: PolicyModelError) -> None:
    raise VppRetval(_ERRORS.get(e.code.value, int(Retval.INVALID_VALUE)), str(e)) from e


def _check_id(value: int, what: str) -> None:
    if value >= MAX_ID:
        raise VppRetval(int(Retval.INVALID_VALUE_2), f"{what} id out of range")


@contextmanager
def _model() -> Iterator[None]:
    """The reference data plane's errors as VPP's retvals."""
    try:
        yield
    except PolicyModelError as e:
        _raise(e)


def _set_name(set_id: int) -> str:
    return str(set_id)


# -- sets -------------------------------------------------------------------------------


@HANDLERS.handler("kpol_ipset_add")
def ipset_add(emu, mp):
    st = emu.state(KpolState)
    _check_id(mp.set_id, "set")
    try:
        kind = SetKind(int(mp.kind))
    except ValueError:
        raise VppRetval(int(Retval.INVALID_VALUE), f"set kind {mp.kind}") from None
    with _model():
        st.dp.set_add(_set_name(mp.set_id), kind)
    return {}


@HANDLERS.handler("kpol_ipset_del")
def ipset_del(emu, mp):
    st = emu.state(KpolState)
    _check_id(mp.set_id, "set")
    with _model():
        st.dp.set_del(_set_name(mp.set_id))
    return {}


def _member(kind: SetKind, m: Any) -> object:
    raw = ipaddress.ip_address(m.addr)
    if isinstance(raw, ipaddress.IPv6Address) and raw.ipv4_mapped is not None:
        # the core keeps IPv4 addresses IPv4-mapped: kp_wire.c refuses such an IPv6 member
        raise ValueError(f"{raw} is IPv4-mapped")
    addr = canonical(raw)
    if kind == SetKind.NET:
        # strict: host bits set is the C core's KP_E_INVAL
        return ipaddress.ip_network(f"{addr}/{m.plen}", strict=True), bool(m.exclude)
    if kind == SetKind.ADDR:
        return addr
    return addr, int(m.proto), int(m.port)


@HANDLERS.handler("kpol_ipset_members_add_del")
def members_add_del(emu, mp):
    st = emu.state(KpolState)
    if mp.set_id >= MAX_ID:
        return {"retval": int(Retval.INVALID_VALUE_2), "failed_at": NO_INDEX}
    name = _set_name(mp.set_id)
    s = st.dp.sets.get(name)
    if s is None:
        return {"retval": int(Retval.NO_SUCH_ENTRY), "failed_at": NO_INDEX}
    raw = list(mp.members)[: mp.n_members]
    members = []
    for i, m in enumerate(raw):
        try:
            members.append(_member(s.kind, m))
        except ValueError:
            return {"retval": int(Retval.INVALID_VALUE), "failed_at": i}
    # One at a time to learn which member failed; then undo, all or nothing.
    before, gen = st.dp.sets[name], st.dp.gen
    for i, m in enumerate(members):
        try:
            (st.dp.member_add if mp.is_add else st.dp.member_del)(name, m)
        except PolicyModelError as e:
            st.dp.sets[name], st.dp.gen = before, gen
            return {"retval": _ERRORS.get(e.code.value, int(Retval.INVALID_VALUE)), "failed_at": i}
    if members and not mp.is_add:
        st.dp.gen = gen + 1
    return {"failed_at": NO_INDEX}


def _api_members(s: Any) -> list[dict]:
    def addr_member(a, plen=None, exclude=False, proto=0, port=0) -> dict:
        return {"addr": a, "plen": a.max_prefixlen if plen is None else plen, "exclude": exclude,
                "proto": proto, "port": port}

    if isinstance(s, NetSet):
        out = [addr_member(n.network_address, n.prefixlen, False) for n in s.include]
        out += [addr_member(n.network_address, n.prefixlen, True) for n in s.exclude]
        return out
    if isinstance(s, AddrSet):
        return [addr_member(a) for a in sorted(s.members, key=lambda a: (a.version, a))]
    return [addr_member(a, None, False, pr, po)
            for a, pr, po in sorted(s.members, key=lambda t: (t[0].version, t[0], t[1], t[2]))]


@HANDLERS.handler("kpol_ipset_dump")
def ipset_dump(emu, mp):
    st = emu.state(KpolState)
    ids = sorted(int(n) for n in st.dp.sets)
    if mp.set_id != NO_INDEX:
        ids = [i for i in ids if i == mp.set_id]
    out = []
    for i in ids:
        s = st.dp.sets[_set_name(i)]
        ms = _api_members(s)
        out.append({"set_id": i, "kind": int(s.kind), "n_members": len(ms), "members": ms})
    return out


# -- policies ------------------------------------------------------------------------------


def _parse_items(mp: Any, dp: ReferenceDataplane) -> PodPolicy:
    isolated = (bool(mp.ingress_isolated), bool(mp.egress_isolated))
    items = list(mp.items)[: mp.n_items]
    rules: tuple[list, list] = ([], [])
    cur: dict | None = None
    for it in items:
        t = int(it.type)
        if t == _ITEM_RULE:
            if it.dir > 1 or not isolated[it.dir]:
                raise VppRetval(int(Retval.INVALID_VALUE), "rule for a direction not isolated")
            cur = {"any": bool(it.any_peer), "peers": [], "ports": [], "pp": []}
            rules[it.dir].append(cur)
        elif t in (_ITEM_PEER, _ITEM_PORTS, _ITEM_PEER_PORT):
            if cur is None:
                raise VppRetval(int(Retval.INVALID_VALUE), "item before the first rule")
            if t == _ITEM_PORTS:
                cur["ports"].append(PortRange(int(it.proto), int(it.lo), int(it.hi)))
            else:
                cur["peers" if t == _ITEM_PEER else "pp"].append(_set_name(it.set_id))
        else:
            raise VppRetval(int(Retval.INVALID_VALUE), f"item type {t}")
    dirs = []
    for d in (0, 1):
        if len(rules[d]) > MAX_RULES:
            raise VppRetval(int(Retval.INVALID_VALUE_2), "too many rules")
        out = []
        for r in rules[d]:
            if any(len(r[k]) > MAX_RULE_REFS for k in ("peers", "ports", "pp")):
                raise VppRetval(int(Retval.INVALID_VALUE_2), "too many references in a rule")
            if r["any"] and r["peers"]:
                raise VppRetval(int(Retval.INVALID_VALUE), "any_peer with peers")
            out.append(Rule(None if r["any"] else tuple(r["peers"]), tuple(r["ports"]), tuple(r["pp"])))
        dirs.append(DirectionPolicy(tuple(out)) if isolated[d] else None)
    return PodPolicy(dirs[0], dirs[1])


@HANDLERS.handler("kpol_policy_set")
def policy_set(emu, mp):
    st = emu.state(KpolState)
    _check_id(mp.policy_id, "policy")
    policy = _parse_items(mp, st.dp)
    with _model():
        st.dp.policy_set(str(mp.policy_id), policy)
    return {}


@HANDLERS.handler("kpol_policy_del")
def policy_del(emu, mp):
    st = emu.state(KpolState)
    _check_id(mp.policy_id, "policy")
    with _model():
        st.dp.policy_del(str(mp.policy_id))
    return {}


def _items(policy: PodPolicy) -> list[dict]:
    out = []
    for d, dp in enumerate((policy.ingress, policy.egress)):
        for rule in dp.rules if dp else ():
            out.append({"type": _ITEM_RULE, "dir": d, "any_peer": rule.peers is None, "proto": 0, "lo": 0,
                        "hi": 0, "set_id": 0})
            out += [{"type": _ITEM_PEER, "dir": d, "any_peer": False, "proto": 0, "lo": 0, "hi": 0,
                     "set_id": int(n)} for n in rule.peers or ()]
            out += [{"type": _ITEM_PORTS, "dir": d, "any_peer": False, "proto": r.proto, "lo": r.lo,
                     "hi": r.hi, "set_id": 0} for r in rule.ports]
            out += [{"type": _ITEM_PEER_PORT, "dir": d, "any_peer": False, "proto": 0, "lo": 0, "hi": 0,
                     "set_id": int(n)} for n in rule.peer_ports]
    return out


@HANDLERS.handler("kpol_policy_dump")
def policy_dump(emu, mp):
    st = emu.state(KpolState)
    ids = sorted(int(n) for n in st.dp.policies)
    if mp.policy_id != NO_INDEX:
        ids = [i for i in ids if i == mp.policy_id]
    out = []
    for i in ids:
        p = st.dp.policies[str(i)]
        items = _items(p)
        out.append({"policy_id": i, "ingress_isolated": p.ingress is not None,
                    "egress_isolated": p.egress is not None, "n_items": len(items), "items": items})
    return out


# -- attachments -------------------------------------------------------------------------------


@HANDLERS.handler("kpol_interface_attach")
def interface_attach(emu, mp):
    st = emu.state(KpolState)
    if mp.sw_if_index not in emu.interfaces:
        raise VppRetval(int(Retval.INVALID_SW_IF_INDEX), "no such interface")
    with _model():
        if mp.is_add:
            _check_id(mp.policy_id, "policy")
            st.dp.attach(str(mp.sw_if_index), str(mp.policy_id))
        else:
            st.dp.detach(str(mp.sw_if_index))
    return {}


@HANDLERS.handler("kpol_interface_dump")
def interface_dump(emu, mp):
    st = emu.state(KpolState)
    return [{"sw_if_index": int(sw), "policy_id": int(p)}
            for sw, p in sorted(st.dp.attached.items(), key=lambda kv: int(kv[0]))]


# -- counters -----------------------------------------------------------------------------------


@HANDLERS.handler("kpol_counters_dump")
def counters_dump(emu, mp):
    st = emu.state(KpolState)
    ids = sorted(int(n) for n in st.dp.policies)
    if mp.policy_id != NO_INDEX:
        ids = [i for i in ids if i == mp.policy_id]
    out = []
    for i in ids:
        for d, direction in enumerate((Direction.INGRESS, Direction.EGRESS)):
            c = st.dp.counters.get((str(i), direction.value))
            if c is not None:
                out.append({"policy_id": i, "dir": d, "n_counts": len(c), "counts": list(c)})
    return out


@HANDLERS.handler("kpol_flow_stats")
def flow_stats(emu, mp):
    st = emu.state(KpolState)
    return {"flows": len(st.dp._flows), "flows_created": st.flows_created, "flow_hits": st.flow_hits,
            "reply_hits": st.reply_hits, "expired": 0, "table_full": st.table_full, "reevaluated": 0}


def evaluate(emu: Any, sw_if_index: int, direction: str, packet: Packet, now: int = 0) -> Verdict:
    """Test-only: run one packet through the policy of ``sw_if_index`` (ingress: towards the pod)."""
    with emu.locked():
        st = emu.state(KpolState)
        flows_before = len(st.dp._flows)
        v = st.dp.process(str(sw_if_index), Direction(direction), packet, now)
        if v.reason == "reply":
            st.reply_hits += 1
        elif v.allowed and len(st.dp._flows) > flows_before:
            st.flows_created += 1
        elif v.allowed and v.reason != "not-isolated":
            st.flow_hits += 1
        elif not v.allowed and v.reason not in ("default-deny",):
            st.table_full += 1
        return v


__all__ = ["HANDLERS", "KpolState", "evaluate"]
