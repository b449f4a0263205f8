"""ksvc: our Services-with-ClientIP-affinity plugin (vpp_plugins/ksvc), typed.

Owns the typed calls on ksvc's binary API: creating or replacing a service
(VIP, proto, port -> backends, affinity timeout) in one message, deleting
it, dumping services, turning the plugin's nodes on per interface, and the
session/affinity statistics. Must not: decide which Kubernetes services
use ksvc rather than cnat (``services/``), or choose interfaces.

The plugin is not part of stock VPP: ``available(vpp)`` says whether the
connected VPP offers it with the pinned CRCs. The plugin validates every
message whole (port 0, a bad protocol, a timeout outside 1..86400, mixed
address families, a duplicate or more than 1024 backends) and a refused
message changes nothing; ``KsvcServiceError`` keeps VPP's retval, names the
service and, when the fault is one backend, which.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from vppagent.iptypes import IpAddress, U32_NONE

from .client import VppClient
from .errors import VppApiItemError, VppError
from .plugin_crcs import offers
from .retvals import Retval

MESSAGES = (
    "ksvc_service_update",
    "ksvc_service_del",
    "ksvc_service_dump",
    "ksvc_enable_disable",
    "ksvc_interface_dump",
    "ksvc_stats",
)

PROTO_TCP, PROTO_UDP, PROTO_SCTP = 6, 17, 132
MAX_BACKENDS = 1024  # ksvc_core.h KS_MAX_BACKENDS
MAX_TIMEOUT_S = 86400  # KS_MAX_TIMEOUT_S
NO_INDEX = U32_NONE


class KsvcError(VppError):
    """A ksvc request that cannot even be encoded (a field outside its wire type)."""


class KsvcUnavailableError(KsvcError):
    """The connected VPP does not offer the ksvc plugin's messages."""


@dataclass
class KsvcServiceError(VppApiItemError):
    """A service VPP refused. ``failed_at``: index of the backend at fault, -1 if none."""


@dataclass(frozen=True)
class KsvcService:
    """One service: new flows of a client within ``timeout_s`` of its last packet to this
    service go to the same backend. ``backends`` keep the order given (dumps too)."""

    vip: IpAddress
    proto: int
    port: int
    backends: tuple[tuple[IpAddress, int], ...]
    timeout_s: int

    @property
    def key(self) -> tuple[IpAddress, int, int]:
        return (self.vip, self.proto, self.port)

    def __str__(self) -> str:
        return f"{self.vip} proto {self.proto} port {self.port}"


@dataclass(frozen=True)
class KsvcStats:
    """Summed over threads: live sessions and affinity entries, and event counts."""

    sessions: int
    affinity_entries: int
    sessions_created: int
    forward_hits: int
    reply_hits: int
    expired: int
    table_full: int
    no_backend: int
    affinity_hits: int
    affinity_new: int
    affinity_evicted: int
    stale: int


def available(vpp: VppClient) -> bool:
    """Whether the connected VPP offers every ksvc message with the pinned CRCs."""
    return offers(vpp, MESSAGES)


def _fits(what: str, value: int, bits: int, s: KsvcService) -> None:
    if not 0 <= value < (1 << bits):
        raise KsvcError(f"{s}: {what} {value} does not fit in {bits} bits")


def update_request(s: KsvcService) -> tuple[str, dict]:
    """The request creating or replacing ``s`` (for ``VppClient.bulk`` too).

    Only what the wire cannot carry is refused here (KsvcError); everything else,
    including more than MAX_BACKENDS backends, is the plugin's to judge."""
    _fits("proto", s.proto, 8, s)
    _fits("port", s.port, 16, s)
    _fits("timeout", s.timeout_s, 32, s)
    for addr, port in s.backends:
        _fits(f"backend {addr} port", port, 16, s)
    return "ksvc_service_update", {
        "vip": s.vip, "proto": s.proto, "port": s.port, "timeout": s.timeout_s,
        "n_backends": len(s.backends),
        "backends": [{"addr": a, "port": p} for a, p in s.backends],
    }


def service_update(vpp: VppClient, s: KsvcService) -> None:
    """Create ``s`` or replace its backends and timeout in one step.

    Sessions to backends that stay keep going; sessions and affinity entries
    to removed backends are re-picked on their next packet."""
    name, fields = update_request(s)
    reply = vpp.call(name, check=False, **fields)
    if reply.retval != 0:
        bad = int(reply.failed_at)
        at = bad if 0 <= bad < len(s.backends) else -1
        ctx = {"service": str(s), "n_backends": len(s.backends), "timeout_s": s.timeout_s}
        if at >= 0:
            addr, port = s.backends[at]
            ctx["backend"] = f"{addr} port {port}"
        raise KsvcServiceError(name, reply.retval, ctx, at)


def service_del(vpp: VppClient, vip: IpAddress, proto: int, port: int, *, missing_ok: bool = False) -> None:
    """Delete a service; its sessions end on their next packet."""
    reply = vpp.call("ksvc_service_del", check=False, vip=vip, proto=proto, port=port)
    if reply.retval == Retval.NO_SUCH_ENTRY and missing_ok:
        return
    if reply.retval != 0:
        raise KsvcServiceError("ksvc_service_del", reply.retval,
                               {"service": f"{vip} proto {proto} port {port}"})


def _service(d) -> KsvcService:
    return KsvcService(ipaddress.ip_address(d.vip), int(d.proto), int(d.port),
                       tuple((ipaddress.ip_address(b.addr), int(b.port)) for b in d.backends[: d.n_backends]),
                       int(d.timeout))


def service_dump(vpp: VppClient) -> list[KsvcService]:
    return [_service(d) for d in vpp.dump("ksvc_service_dump")]


def enable(vpp: VppClient, sw_if_index: int, on: bool) -> None:
    """Enable (or disable) the ksvc nodes on an interface; repeating either is a no-op. The
    plugin runs them on enabled interfaces only while at least one service exists."""
    vpp.call("ksvc_enable_disable", sw_if_index=sw_if_index, enable=on)


def interface_dump(vpp: VppClient) -> list[int]:
    """The sw_if_index of every interface ksvc is enabled on, ascending."""
    return sorted(int(d.sw_if_index) for d in vpp.dump("ksvc_interface_dump"))


def stats(vpp: VppClient) -> KsvcStats:
    r = vpp.call("ksvc_stats")
    return KsvcStats(r.sessions, r.affinity_entries, r.sessions_created, r.forward_hits, r.reply_hits,
                     r.expired, r.table_full, r.no_backend, r.affinity_hits, r.affinity_new,
                     r.affinity_evicted, r.stale)


__all__ = ["KsvcError", "KsvcService", "KsvcServiceError", "KsvcStats", "KsvcUnavailableError", "MAX_BACKENDS",
           "MAX_TIMEOUT_S", "MESSAGES", "PROTO_SCTP", "PROTO_TCP", "PROTO_UDP", "available", "enable",
           "interface_dump", "service_del", "service_dump", "service_update", "stats", "update_request"]
