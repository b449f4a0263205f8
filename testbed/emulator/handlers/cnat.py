"""cnat.api: translations (service VIPs and backends), SNAT, the cnat feature.

Modelled on plugins/cnat/cnat_api.c, cnat_translation.c, cnat_types.c and
cnat_snat_policy.c (VPP 26.06):

- Endpoints: an address with sw_if_index ~0 is resolved at once; an
  interface endpoint takes the interface's first address of its family
  when it has one (else it stays unresolved and dumps as 0.0.0.0). A bad
  ``if_af``: INVALID_ADDRESS_FAMILY.
- ``cnat_translation_update`` is an upsert keyed by (VIP address, port,
  protocol). An interface VIP that is still unresolved is stored under a
  key VPP never looks up again, so every update of it adds a translation.
  Zero paths: VPP 26.06 validates a vector of ``n_paths - 1`` (2^32 - 1)
  entries and dies; the emulator answers UNSPECIFIED and logs why. An
  update keeps the id, the load-balancing type and the flow
  hash of the first add, takes the new flags, and rebuilds the path list in
  the order given, keeping the tracker (and its flags) of every path whose
  (dst, src) did not change. Ids come from VPP's pool; a failure answers ~0.
- The translation dump reports no flags, is_real_ip or flow hash (VPP
  leaves them zero), and path flags carry VPP's internal ACTIVE bit (4)
  when both path endpoints are resolved.
- ``cnat_translation_del``: unknown id: NO_SUCH_ENTRY.
  ``cnat_session_purge`` flushes sessions *and deletes every translation*,
  as VPP's does.
- SNAT (table 0 only, through ``cnat_set_snat_addresses``): all-zero
  addresses with sw_if_index ~0 delete the entry (none: FEATURE_DISABLED);
  otherwise each family given (or both, with an interface) is set. The get
  reports the IPv6 side's interface (0 when that side was never set).
  Exclusions, the policy and interface maps live in that entry; deleting
  the entry drops them. ``cnat_snat_policy_add_del_if``: unknown interface
  INVALID_SW_IF_INDEX, table > 3 INVALID_VALUE, no entry FEATURE_DISABLED.
  ``cnat_set_snat_policy``: policy > 4: INVALID_VALUE.
- Without a SNAT entry, VPP 26.06 crashes (NULL dereference) in
  ``cnat_set_snat_policy`` and ``cnat_snat_policy_add_del_exclude_pfx``; the
  emulator answers UNSPECIFIED instead and logs why. A test double cannot
  usefully die; the vpp layer never sends these without an entry.
- ``feature_cnat_enable_disable``: unknown interface: INVALID_SW_IF_INDEX.

Not modelled: sessions (there is no traffic: the dump is empty), cnat
clients and the FIB entries VIPs and backends add, maglev tables, address
watching (an interface endpoint resolved later stays unresolved), SNAT
tables other than 0 (``cnat_set_snat_addresses_v2``), and the cnat feature
arcs themselves (enable/disable is validated, not recorded).
"""
from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any

from vppagent.vpp.retvals import Retval

from ..registry import HandlerTable, VppRetval
from ..state import FamilyState, IndexPool
from ._common import NO_INDEX
from ._replies import on_failure

log = logging.getLogger(__name__)

HANDLERS = HandlerTable("cnat")

_TRK_ACTIVE = 4
_N_SNAT_IF_MAP = 4
_MAX_SNAT_POLICY = 4  # CNAT_SNAT_POLICY_DNAT_ONLY, beyond the API enum

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Endpoint:
    ip: IPAddress  # the zero address of ``af`` while unresolved
    port: int
    sw_if_index: int
    af: int  # 4 or 6
    resolved: bool


@dataclass
class Track:
    dst: Endpoint
    src: Endpoint
    flags: int


@dataclass
class Translation:
    index: int
    key: tuple | None  # None: an unresolved interface VIP (never looked up)
    vip: Endpoint
    proto: int
    flags: int
    lb_type: int
    flow_hash: int
    paths: list[Track] = field(default_factory=list)


@dataclass
class SnatEntry:
    ip4: ipaddress.IPv4Address = ipaddress.IPv4Address(0)
    ip6: ipaddress.IPv6Address = ipaddress.IPv6Address(0)
    sw_if_index4: int = 0  # VPP's zeroed entry: 0 until that side is set
    sw_if_index6: int = 0
    has4: bool = False
    has6: bool = False
    policy: int = 0
    excluded: set[IPNetwork] = field(default_factory=set)
    if_maps: dict[int, set[int]] = field(default_factory=dict)


@dataclass
class CnatState(FamilyState):
    pool: IndexPool = field(default_factory=IndexPool)
    translations: dict[int, Translation] = field(default_factory=dict)  # by id
    by_key: dict[tuple, int] = field(default_factory=dict)
    snat: SnatEntry | None = None


def _zero(af: int) -> IPAddress:
    return ipaddress.IPv4Address(0) if af == 4 else ipaddress.IPv6Address(0)


def _decode_endpoint(emu, ep: Any) -> Endpoint:
    """cnat_endpoint_decode, then cnat_resolve_ep."""
    if ep.sw_if_index == NO_INDEX:
        return Endpoint(ep.addr, ep.port, NO_INDEX, ep.addr.version, True)
    if int(ep.if_af) not in (0, 1):
        raise VppRetval(Retval.INVALID_ADDRESS_FAMILY, f"if_af {int(ep.if_af)}")
    af = 6 if int(ep.if_af) == 1 else 4
    iface = emu.interfaces.get(ep.sw_if_index)
    addresses = iface.addresses_of(af) if iface is not None else []
    if addresses:
        return Endpoint(addresses[0].ip, ep.port, ep.sw_if_index, af, True)
    return Endpoint(_zero(af), ep.port, ep.sw_if_index, af, False)


def _unresolved(ep: Endpoint) -> Endpoint:
    """The endpoint as decoded, before resolution (what VPP compares paths with)."""
    if ep.sw_if_index == NO_INDEX:
        return ep
    return Endpoint(_zero(ep.af), ep.port, ep.sw_if_index, ep.af, False)


def _same(a: Endpoint, b: Endpoint) -> bool:
    """cnat_endpoint_cmp == 0: same address (and family), port and interface."""
    return a.ip == b.ip and a.port == b.port and a.sw_if_index == b.sw_if_index


def _encode_endpoint(ep: Endpoint) -> dict:
    return {
        "addr": ep.ip if ep.resolved else ipaddress.IPv4Address(0),
        "sw_if_index": ep.sw_if_index,
        "if_af": 1 if ep.af == 6 else 0,
        "port": ep.port,
    }


@HANDLERS.handler("cnat_translation_update")
@on_failure(id=NO_INDEX)
def cnat_translation_update(emu, mp):
    st = emu.state(CnatState)
    t = mp.translation
    if t.n_paths == 0:
        log.error("cnat_translation_update without paths: VPP 26.06 allocates 2^32 paths "
                  "here and dies; the emulator answers UNSPECIFIED")
        raise VppRetval(Retval.UNSPECIFIED, "no paths (VPP would crash)")
    proto = int(t.ip_proto)
    paths = [(_decode_endpoint(emu, p.dst_ep), _decode_endpoint(emu, p.src_ep), int(p.flags))
             for p in list(t.paths)[: t.n_paths]]
    vip = _decode_endpoint(emu, t.vip)
    # VPP finds an unresolved interface VIP under (sw_if_index, port, proto)
    # but stores it under a key with the family bits set: never found again.
    key = ("ip", vip.ip, vip.port, proto) if vip.resolved else None
    index = st.by_key.get(key) if key is not None else None
    if index is None:
        index = st.pool.get()
        tr = Translation(index, key, vip, proto, int(t.flags), int(t.lb_type), t.flow_hash_config)
        st.translations[index] = tr
        if key is not None:
            st.by_key[key] = index
    else:
        tr = st.translations[index]
        tr.flags = int(t.flags)
    kept: dict[int, Track] = {}
    for trk in tr.paths:
        for i, (dst, src, _) in enumerate(paths):
            if _same(trk.dst, _unresolved(dst)) and _same(trk.src, _unresolved(src)):
                kept.setdefault(i, trk)
                break
    new_paths = []
    for i, (dst, src, flags) in enumerate(paths):
        if i in kept:
            new_paths.append(kept[i])
            continue
        if dst.resolved and src.resolved:
            flags |= _TRK_ACTIVE
        new_paths.append(Track(dst, src, flags))
    tr.paths = new_paths
    return {"id": index}


def _delete_translation(st: CnatState, index: int) -> None:
    tr = st.translations.pop(index)
    if tr.key is not None and st.by_key.get(tr.key) == index:
        del st.by_key[tr.key]
    st.pool.put(index)


@HANDLERS.handler("cnat_translation_del")
def cnat_translation_del(emu, mp):
    st = emu.state(CnatState)
    if mp.id not in st.translations:
        raise VppRetval(Retval.NO_SUCH_ENTRY, f"no translation {mp.id}")
    _delete_translation(st, mp.id)
    return {}


@HANDLERS.handler("cnat_translation_dump")
def cnat_translation_dump(emu, mp):
    st = emu.state(CnatState)
    out = []
    for index in sorted(st.translations):
        tr = st.translations[index]
        out.append({"translation": {
            "vip": _encode_endpoint(tr.vip),
            "id": tr.index,
            "ip_proto": tr.proto,
            "is_real_ip": 0,
            "flags": 0,
            "lb_type": tr.lb_type,
            "n_paths": len(tr.paths),
            "flow_hash_config": 0,
            "paths": [{"dst_ep": _encode_endpoint(p.dst), "src_ep": _encode_endpoint(p.src),
                       "flags": p.flags & 0xFF} for p in tr.paths],
        }})
    return out


@HANDLERS.handler("cnat_session_dump")
def cnat_session_dump(emu, mp):
    return []  # no traffic, no sessions


@HANDLERS.handler("cnat_session_purge")
def cnat_session_purge(emu, mp):
    st = emu.state(CnatState)
    for index in sorted(st.translations):
        _delete_translation(st, index)
    return {}


# -- SNAT -----------------------------------------------------------------------


@HANDLERS.handler("cnat_set_snat_addresses")
def cnat_set_snat_addresses(emu, mp):
    st = emu.state(CnatState)
    ip4, ip6, sw_if_index = mp.snat_ip4, mp.snat_ip6, mp.sw_if_index
    sw_if_set = sw_if_index != NO_INDEX
    ip4_set, ip6_set = not ip4.is_unspecified, not ip6.is_unspecified
    if not (sw_if_set or ip4_set or ip6_set):
        if st.snat is None:
            raise VppRetval(Retval.FEATURE_DISABLED, "no SNAT entry to delete")
        st.snat = None
        return {}
    entry = st.snat if st.snat is not None else SnatEntry()
    st.snat = entry
    if sw_if_set or ip4_set:
        entry.has4, entry.sw_if_index4 = True, sw_if_index
        entry.ip4 = ip4 if ip4_set else _resolve(emu, sw_if_index, 4)
    if sw_if_set or ip6_set:
        entry.has6, entry.sw_if_index6 = True, sw_if_index
        entry.ip6 = ip6 if ip6_set else _resolve(emu, sw_if_index, 6)
    return {}


def _resolve(emu, sw_if_index: int, af: int) -> Any:
    iface = emu.interfaces.get(sw_if_index)
    addresses = iface.addresses_of(af) if iface is not None else []
    return addresses[0].ip if addresses else _zero(af)


@HANDLERS.handler("cnat_get_snat_addresses")
def cnat_get_snat_addresses(emu, mp):
    st = emu.state(CnatState)
    if st.snat is None:
        raise VppRetval(Retval.FEATURE_DISABLED, "no SNAT entry")
    e = st.snat
    return {"id": 0, "snat_ip4": e.ip4, "snat_ip6": e.ip6, "sw_if_index": e.sw_if_index6}


@HANDLERS.handler("cnat_snat_addresses_dump")
def cnat_snat_addresses_dump(emu, mp):
    e = emu.state(CnatState).snat
    if e is None:
        return []
    return [{"retval": 0, "fwd_table_id4": 0, "fwd_table_id6": 0, "ret_table_id4": 0,
             "ret_table_id6": 0, "snat_ip4": e.ip4, "snat_ip6": e.ip6,
             "sw_if_index": e.sw_if_index6}]


def _default_entry(emu, what: str) -> SnatEntry:
    e = emu.state(CnatState).snat
    if e is None:
        log.error("%s without a SNAT entry: VPP 26.06 dereferences NULL here and crashes; "
                  "the emulator answers UNSPECIFIED", what)
        raise VppRetval(Retval.UNSPECIFIED, f"{what}: no SNAT entry (VPP would crash)")
    return e


@HANDLERS.handler("cnat_snat_policy_add_del_exclude_pfx")
def cnat_snat_policy_add_del_exclude_pfx(emu, mp):
    e = _default_entry(emu, "cnat_snat_policy_add_del_exclude_pfx")
    prefix = ipaddress.ip_network(mp.prefix, strict=False)  # VPP normalizes it
    if mp.is_add:
        e.excluded.add(prefix)
    else:
        e.excluded.discard(prefix)  # deleting an absent prefix succeeds
    return {}


@HANDLERS.handler("cnat_snat_policy_add_del_if")
def cnat_snat_policy_add_del_if(emu, mp):
    st = emu.state(CnatState)
    emu.interfaces.require(mp.sw_if_index)
    table = int(mp.table)
    if table >= _N_SNAT_IF_MAP:
        raise VppRetval(Retval.INVALID_VALUE, f"SNAT interface map {table}")
    if st.snat is None:
        raise VppRetval(Retval.FEATURE_DISABLED, "no SNAT entry")
    members = st.snat.if_maps.setdefault(table, set())
    if mp.is_add:
        members.add(mp.sw_if_index)
    else:
        members.discard(mp.sw_if_index)
    return {}


@HANDLERS.handler("cnat_set_snat_policy")
def cnat_set_snat_policy(emu, mp):
    e = _default_entry(emu, "cnat_set_snat_policy")
    policy = int(mp.policy)
    if policy > _MAX_SNAT_POLICY:
        raise VppRetval(Retval.INVALID_VALUE, f"SNAT policy {policy}")
    e.policy = policy
    return {}


@HANDLERS.handler("feature_cnat_enable_disable")
def feature_cnat_enable_disable(emu, mp):
    emu.interfaces.require(mp.sw_if_index)
    return {}
