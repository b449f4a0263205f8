"""acl.api: ACLs (add/replace, delete, dump) and interface ACL lists.

Modelled on plugins/acl/acl.c (VPP 26.06):

- ``acl_add_replace``: a tag of 64 bytes or more: INVALID_VALUE; a rule
  whose source and destination differ in family: INVALID_SRC_ADDRESS; a
  first port above the last: INVALID_VALUE_2; replacing an index that does
  not exist: NO_SUCH_ENTRY; index ~0 allocates from VPP's pool (freed
  indexes reused, last freed first). Zero rules are accepted.
- ``acl_del``: unknown: NO_SUCH_ENTRY; applied as input somewhere:
  ACL_IN_USE_INBOUND (-142); as output: ACL_IN_USE_OUTBOUND (-143).
- ``acl_interface_set_acl_list``: unknown interface: INVALID_SW_IF_INDEX;
  any unknown ACL: NO_SUCH_ENTRY (nothing applied). Then the output list is
  applied, then the input list; an ACL twice in one list fails that list,
  and VPP folds the failure into retval 1 (``rv = rv || ...``), keeping an
  output list already applied.
- dumps: ``acl_dump`` with ~0 lists all, with an unknown index nothing;
  ``acl_interface_list_dump`` reports every interface (empty lists too).
- deleting an interface drops its ACL lists, as the plugin's interface
  hook does.

Not modelled: packet matching and sessions, MACIP ACLs, lookup contexts of
other users, and prefixes with host bits set (vpp_papi masks them while
decoding, so the emulator cannot see them; VPP refuses them with
INVALID_SRC_ADDRESS/INVALID_DST_ADDRESS).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vppagent.vpp.retvals import Retval

from ..interfaces import Interface
from ..registry import HandlerTable, VppRetval
from ..state import FamilyState, IndexPool
from ._common import NO_INDEX

HANDLERS = HandlerTable("acl")

# VPP error codes the shared Retval enum does not name.
INVALID_SRC_ADDRESS = Retval.INVALID_SRC_ADDRESS
ACL_IN_USE_INBOUND = Retval.ACL_IN_USE_INBOUND
ACL_IN_USE_OUTBOUND = Retval.ACL_IN_USE_OUTBOUND

# A prefix vpp_papi cannot build (length beyond the family's) is one VPP's
# prefix check refuses; the source prefix is checked first.
DECODE_ERRORS = {"acl_add_replace": INVALID_SRC_ADDRESS}

_TAG_SIZE = 64
# acl_interface_set_acl_list folds a failed list into this retval.
_FOLDED_ERROR = 1


@dataclass
class AclList:
    index: int
    tag: str
    rules: list[dict[str, Any]]


@dataclass
class AclState(FamilyState):
    pool: IndexPool = field(default_factory=IndexPool)
    acls: dict[int, AclList] = field(default_factory=dict)
    inputs: dict[int, list[int]] = field(default_factory=dict)  # sw_if_index -> ACLs
    outputs: dict[int, list[int]] = field(default_factory=dict)

    def used_by(self, table: dict[int, list[int]], acl: int) -> bool:
        return any(acl in acls for acls in table.values())

    def on_interface_deleted(self, state, iface: Interface) -> None:
        self.inputs.pop(iface.sw_if_index, None)
        self.outputs.pop(iface.sw_if_index, None)


def _rule(r: Any) -> dict[str, Any]:
    """A rule as VPP stores it and dumps it back (addresses in the source's family)."""
    return {
        "is_permit": int(r.is_permit),
        "src_prefix": r.src_prefix,
        "dst_prefix": r.dst_prefix,
        "proto": int(r.proto),
        "srcport_or_icmptype_first": r.srcport_or_icmptype_first,
        "srcport_or_icmptype_last": r.srcport_or_icmptype_last,
        "dstport_or_icmpcode_first": r.dstport_or_icmpcode_first,
        "dstport_or_icmpcode_last": r.dstport_or_icmpcode_last,
        "tcp_flags_mask": r.tcp_flags_mask,
        "tcp_flags_value": r.tcp_flags_value,
    }


@HANDLERS.handler("acl_add_replace")
def acl_add_replace(emu, mp):
    st = emu.state(AclState)
    tag = mp.tag or ""
    if len(tag.encode()) >= _TAG_SIZE:
        return {"retval": int(Retval.INVALID_VALUE), "acl_index": mp.acl_index}
    rules = list(mp.r)[: mp.count]
    for r in rules:
        if r.src_prefix.version != r.dst_prefix.version:
            return {"retval": INVALID_SRC_ADDRESS, "acl_index": mp.acl_index}
        if (r.srcport_or_icmptype_first > r.srcport_or_icmptype_last
                or r.dstport_or_icmpcode_first > r.dstport_or_icmpcode_last):
            return {"retval": int(Retval.INVALID_VALUE_2), "acl_index": mp.acl_index}
    if mp.acl_index != NO_INDEX:
        acl = st.acls.get(mp.acl_index)
        if acl is None:
            # VPP echoes the index it was asked to replace.
            return {"retval": int(Retval.NO_SUCH_ENTRY), "acl_index": mp.acl_index}
        acl.tag = tag
        acl.rules = [_rule(r) for r in rules]
        return {"acl_index": acl.index}
    index = st.pool.get()
    st.acls[index] = AclList(index, tag, [_rule(r) for r in rules])
    return {"acl_index": index}


@HANDLERS.handler("acl_del")
def acl_del(emu, mp):
    st = emu.state(AclState)
    if mp.acl_index not in st.acls:
        raise VppRetval(Retval.NO_SUCH_ENTRY, f"no ACL {mp.acl_index}")
    if st.used_by(st.inputs, mp.acl_index):
        raise VppRetval(ACL_IN_USE_INBOUND, f"ACL {mp.acl_index} is applied as input")
    if st.used_by(st.outputs, mp.acl_index):
        raise VppRetval(ACL_IN_USE_OUTBOUND, f"ACL {mp.acl_index} is applied as output")
    del st.acls[mp.acl_index]
    st.pool.put(mp.acl_index)
    return {}


def _apply(table: dict[int, list[int]], sw_if_index: int, acls: list[int]) -> bool:
    """acl_interface_set_inout_acl_list: False (nothing changed) on a duplicate."""
    if len(set(acls)) != len(acls):
        return False
    if acls:
        table[sw_if_index] = list(acls)
    else:
        table.pop(sw_if_index, None)
    return True


@HANDLERS.handler("acl_interface_set_acl_list")
def acl_interface_set_acl_list(emu, mp):
    st = emu.state(AclState)
    emu.interfaces.require(mp.sw_if_index)
    acls = list(mp.acls)[: mp.count]
    if any(a not in st.acls for a in acls):
        raise VppRetval(Retval.NO_SUCH_ENTRY, "an ACL of the list does not exist")
    n_input = min(mp.n_input, len(acls))
    if not _apply(st.outputs, mp.sw_if_index, acls[n_input:]):
        return {"retval": _FOLDED_ERROR}
    if not _apply(st.inputs, mp.sw_if_index, acls[:n_input]):
        return {"retval": _FOLDED_ERROR}
    return {}


@HANDLERS.handler("acl_dump")
def acl_dump(emu, mp):
    st = emu.state(AclState)

    def details(acl: AclList) -> dict:
        return {"acl_index": acl.index, "tag": acl.tag, "count": len(acl.rules),
                "r": [dict(r) for r in acl.rules]}

    if mp.acl_index == NO_INDEX:
        return [details(st.acls[i]) for i in sorted(st.acls)]
    acl = st.acls.get(mp.acl_index)
    return [details(acl)] if acl is not None else []


@HANDLERS.handler("acl_interface_list_dump")
def acl_interface_list_dump(emu, mp):
    st = emu.state(AclState)

    def details(sw_if_index: int) -> dict:
        ins = st.inputs.get(sw_if_index, [])
        outs = st.outputs.get(sw_if_index, [])
        return {"sw_if_index": sw_if_index, "count": len(ins) + len(outs), "n_input": len(ins),
                "acls": ins + outs}

    if mp.sw_if_index == NO_INDEX:
        return [details(i.sw_if_index) for i in emu.interfaces]
    if mp.sw_if_index not in emu.interfaces:
        return []
    return [details(mp.sw_if_index)]
