"""ksvc.api: our Services-with-ClientIP-affinity plugin (vpp_plugins/ksvc), emulated.

Modelled on vpp_plugins/ksvc/ksvc.c and core/ks_services.c: state only (the
emulator forwards no packets, so sessions and affinity stay empty and the
statistics stay zero). Validation, whole message before any change, with
the plugin's retvals and order of checks:

- update: more than 1024 backends: INVALID_VALUE_2; an IPv4-mapped IPv6 VIP:
  INVALID_VALUE, or backend: INVALID_VALUE with ``failed_at``; a protocol other than
  6/17/132, port 0, an unspecified VIP, a timeout outside 1..86400:
  INVALID_VALUE; then per backend in order, port 0, another address family
  than the VIP, or unspecified: INVALID_VALUE with ``failed_at``; then a
  duplicate backend: ENTRY_ALREADY_EXISTS with ``failed_at`` at its second
  occurrence; a 65537th service: INVALID_VALUE_2. An update of an existing
  key replaces its backends and timeout and keeps its place in dumps.
- delete of a missing service: NO_SUCH_ENTRY.
- enable/disable: an unknown interface: INVALID_SW_IF_INDEX; deleting an
  interface forgets it, as the plugin's interface hook does.

Dumps answer in the plugin's order: services by slot (the lowest free slot
is taken at create), interfaces by sw_if_index ascending.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from vppagent.vpp.retvals import Retval

from ..interfaces import Interface
from ..registry import HandlerTable, VppRetval
from ..state import FamilyState
from ._common import NO_INDEX

HANDLERS = HandlerTable("ksvc")

MAX_BACKENDS = 1024
MAX_SERVICES = 1 << 16
MAX_TIMEOUT_S = 86400
PROTOS = (6, 17, 132)

Key = tuple[Any, int, int]  # (vip, proto, port)


@dataclass
class Service:
    vip: Any
    proto: int
    port: int
    timeout: int
    backends: list[tuple[Any, int]]


@dataclass
class KsvcState(FamilyState):
    slots: dict[int, Service] = field(default_factory=dict)
    by_key: dict[Key, int] = field(default_factory=dict)
    enabled: set[int] = field(default_factory=set)

    def on_interface_deleted(self, state, iface: Interface) -> None:
        self.enabled.discard(iface.sw_if_index)


def _addr(a: Any) -> Any:
    return ipaddress.ip_address(a)


def _mapped(a: Any) -> bool:
    return a.version == 6 and a.ipv4_mapped is not None


def _zero(a: Any) -> bool:
    return a.packed == bytes(len(a.packed))


def _refuse(retval: int, failed_at: int = NO_INDEX) -> dict:
    return {"retval": int(retval), "failed_at": failed_at}


@HANDLERS.handler("ksvc_service_update")
def service_update(emu, mp):
    st = emu.state(KsvcState)
    n = int(mp.n_backends)
    if n > MAX_BACKENDS:
        return _refuse(Retval.INVALID_VALUE_2)
    # the glue decodes addresses first (an IPv4-mapped IPv6 address is refused there:
    # the core holds IPv4 in that form), then the core checks the service
    vip = _addr(mp.vip)
    if _mapped(vip):
        return _refuse(Retval.INVALID_VALUE)
    backends: list[tuple[Any, int]] = []
    for i, b in enumerate(mp.backends[:n]):
        a = _addr(b.addr)
        if _mapped(a):
            return _refuse(Retval.INVALID_VALUE, i)
        backends.append((a, int(b.port)))
    if mp.proto not in PROTOS or mp.port == 0 or _zero(vip):
        return _refuse(Retval.INVALID_VALUE)
    if not 1 <= mp.timeout <= MAX_TIMEOUT_S:
        return _refuse(Retval.INVALID_VALUE)
    for i, (a, port) in enumerate(backends):
        if port == 0 or a.version != vip.version or _zero(a):
            return _refuse(Retval.INVALID_VALUE, i)
    seen: set[tuple[Any, int]] = set()
    for i, b in enumerate(backends):
        if b in seen:
            return _refuse(Retval.ENTRY_ALREADY_EXISTS, i)
        seen.add(b)
    key = (vip, int(mp.proto), int(mp.port))
    slot = st.by_key.get(key)
    if slot is None:
        if len(st.slots) >= MAX_SERVICES:
            return _refuse(Retval.INVALID_VALUE_2)
        slot = next(i for i in range(MAX_SERVICES + 1) if i not in st.slots)
        st.by_key[key] = slot
    st.slots[slot] = Service(vip, int(mp.proto), int(mp.port), int(mp.timeout), backends)
    return {"failed_at": NO_INDEX}


@HANDLERS.handler("ksvc_service_del")
def service_del(emu, mp):
    st = emu.state(KsvcState)
    slot = st.by_key.pop((_addr(mp.vip), int(mp.proto), int(mp.port)), None)
    if slot is None:
        raise VppRetval(int(Retval.NO_SUCH_ENTRY), "no such service")
    del st.slots[slot]
    return {}


@HANDLERS.handler("ksvc_service_dump")
def service_dump(emu, mp):
    st = emu.state(KsvcState)
    return [{"vip": s.vip, "proto": s.proto, "port": s.port, "timeout": s.timeout,
             "n_backends": len(s.backends), "backends": [{"addr": a, "port": p} for a, p in s.backends]}
            for _, s in sorted(st.slots.items())]


@HANDLERS.handler("ksvc_enable_disable")
def enable_disable(emu, mp):
    st = emu.state(KsvcState)
    emu.interfaces.require(mp.sw_if_index)
    if mp.enable:
        st.enabled.add(int(mp.sw_if_index))
    else:
        st.enabled.discard(int(mp.sw_if_index))
    return {}


@HANDLERS.handler("ksvc_interface_dump")
def interface_dump(emu, mp):
    st = emu.state(KsvcState)
    return [{"sw_if_index": sw} for sw in sorted(st.enabled)]


@HANDLERS.handler("ksvc_stats")
def stats(emu, mp):
    emu.state(KsvcState)
    return {name: 0 for name in ("sessions", "affinity_entries", "sessions_created", "forward_hits",
                                 "reply_hits", "expired", "table_full", "no_backend", "affinity_hits",
                                 "affinity_new", "affinity_evicted", "stale")}
