"""cnat: service load balancing (translations), source NAT and the cnat feature arc.

Owns the typed calls on VPP's cnat plugin: translations (a VIP and its
backend paths), the SNAT addresses and policy, SNAT exclusions, the SNAT
interface maps, the cnat feature on interfaces, and the session table.
Must not: decide which services exist (``services/`` does) or touch routes.

What VPP 26.06 offers, and what it does not, shapes this module:

- ``cnat_translation_update`` is an upsert keyed by (VIP, port, protocol):
  updating an existing VIP keeps its id. Paths have no weights in 26.06.
  Two exceptions: a translation with no path at all makes VPP 26.06 try to
  allocate 2^32 paths and die, so :func:`update_translation` refuses it
  (delete the translation instead); and an interface VIP whose interface
  has no address yet is never found again (VPP looks it up under another
  key than it stores it), so each update adds a translation: delete and
  re-create those instead of updating them.
- The translation dump reports neither the translation flags nor
  ``is_real_ip``; path flags come back with VPP's internal tracking bit,
  which :func:`dump_translations` masks off.
- The SNAT settings hang off the SNAT address entry: set the addresses
  (:func:`set_snat_addresses`) before exclusions, the policy or interface
  maps. VPP 26.06 dereferences a missing entry in ``cnat_set_snat_policy``
  and ``cnat_snat_policy_add_del_exclude_pfx`` (it crashes), so those two
  functions check first and raise :class:`SnatNotConfigured`.
- ``cnat_session_purge`` deletes every translation along with the sessions.
- There is no dump of exclusions, SNAT interface maps or the feature arc:
  callers re-apply them (adds are idempotent, deletes of absent entries
  succeed).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from vppagent.iptypes import IpAddress, IpNetwork, U32_NONE

from .client import VppClient
from .errors import VppApiError, VppError
from .retvals import Retval

MESSAGES = (
    "cnat_translation_update",
    "cnat_translation_del",
    "cnat_translation_dump",
    "cnat_session_dump",
    "cnat_session_purge",
    "cnat_set_snat_addresses",
    "cnat_get_snat_addresses",
    "cnat_snat_policy_add_del_exclude_pfx",
    "cnat_snat_policy_add_del_if",
    "cnat_set_snat_policy",
    "feature_cnat_enable_disable",
)

NO_INTERFACE = U32_NONE

# Path flag bits that belong to the API; the others (ACTIVE, MARKED_FOR_DELETE)
# are VPP's own tracker state that leaks into the dump.
_API_PATH_FLAGS = 0x2


class Proto(IntEnum):
    ICMP = 1
    TCP = 6
    UDP = 17
    ICMP6 = 58
    SCTP = 132


class LbType(IntEnum):
    DEFAULT = 0
    MAGLEV = 1


class TranslationFlags(IntFlag):
    NONE = 0
    ALLOC_PORT = 1
    NO_RETURN_SESSION = 4
    NO_CLIENT = 8


class PathFlags(IntFlag):
    NONE = 0
    NO_NAT = 2


class SnatPolicy(IntEnum):
    NONE = 0
    IF_PFX = 1
    K8S = 2
    DNAT = 3


class SnatIfTable(IntEnum):
    """Which SNAT interface map an interface is added to."""

    INCLUDE_V4 = 0
    INCLUDE_V6 = 1
    POD = 2
    HOST = 3


class SnatNotConfigured(VppError):
    """A SNAT setting was asked for before the SNAT addresses were set."""


@dataclass(frozen=True)
class Endpoint:
    """An address and port, or "the first address of this interface" and port.

    With ``sw_if_index`` set, ``address`` is ignored on input and VPP
    resolves it from the interface (``ipv6`` says which family); a dump
    shows the unspecified address until the interface has one.
    """

    address: IpAddress = ipaddress.IPv4Address(0)
    port: int = 0
    sw_if_index: int = NO_INTERFACE
    ipv6: bool = False

    @staticmethod
    def of(address: str | IpAddress, port: int = 0) -> "Endpoint":
        addr = ipaddress.ip_address(address)
        return Endpoint(addr, port, NO_INTERFACE, addr.version == 6)

    @staticmethod
    def interface(sw_if_index: int, port: int = 0, *, ipv6: bool = False) -> "Endpoint":
        zero = ipaddress.IPv6Address(0) if ipv6 else ipaddress.IPv4Address(0)
        return Endpoint(zero, port, sw_if_index, ipv6)


@dataclass(frozen=True)
class Path:
    """One backend: where to send (``dst``) and the source to use (``src``).

    ``src`` unset (the unspecified address, port 0) keeps the client's source.
    """

    dst: Endpoint
    src: Endpoint | None = None
    flags: PathFlags = PathFlags.NONE

    def source(self) -> Endpoint:
        if self.src is not None:
            return self.src
        return Endpoint.interface(NO_INTERFACE, ipv6=self.dst.ipv6)


@dataclass(frozen=True)
class TranslationSpec:
    vip: Endpoint
    proto: Proto
    paths: tuple[Path, ...] = ()
    lb_type: LbType = LbType.DEFAULT
    flags: TranslationFlags = TranslationFlags.ALLOC_PORT
    # False: the VIP is virtual (VPP answers for it exclusively).
    is_real_ip: bool = False
    flow_hash_config: int = 0  # 0: VPP's default hash


@dataclass(frozen=True)
class Translation:
    """A translation as VPP reports it (no flags: the 26.06 dump omits them)."""

    id: int
    vip: Endpoint
    proto: Proto | int
    lb_type: LbType | int
    paths: tuple[Path, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class SnatAddresses:
    ip4: ipaddress.IPv4Address
    ip6: ipaddress.IPv6Address
    sw_if_index: int


@dataclass(frozen=True)
class Session:
    src: tuple[IpAddress, int]
    dst: tuple[IpAddress, int]
    proto: int
    ts_index: int
    flags: int


def _api_endpoint(ep: Endpoint) -> dict:
    return {
        "addr": ep.address,
        "sw_if_index": ep.sw_if_index,
        "if_af": 1 if ep.ipv6 else 0,
        "port": ep.port,
    }


def _endpoint(d) -> Endpoint:
    return Endpoint(d.addr, d.port, d.sw_if_index, bool(d.if_af))


def _proto(value: int) -> Proto | int:
    try:
        return Proto(value)
    except ValueError:
        return value


def translation_fields(spec: TranslationSpec) -> dict:
    """The ``cnat_translation_update`` fields of ``spec`` (for pipelined ``vpp.bulk``).

    Refuses a translation without paths: VPP 26.06 would try to allocate
    2^32 paths and die.
    """
    if not spec.paths:
        raise ValueError(f"cnat translation {spec.vip} has no path; VPP 26.06 cannot take that "
                         "(it crashes): delete the translation instead")
    paths = [
        {"dst_ep": _api_endpoint(p.dst), "src_ep": _api_endpoint(p.source()), "flags": int(p.flags)}
        for p in spec.paths
    ]
    return {
        "translation": {
            "vip": _api_endpoint(spec.vip),
            "id": 0,
            "ip_proto": int(spec.proto),
            "is_real_ip": spec.is_real_ip,
            "flags": int(spec.flags),
            "lb_type": int(spec.lb_type),
            "n_paths": len(paths),
            "flow_hash_config": spec.flow_hash_config,
            "paths": paths,
        }
    }


def update_translation(vpp: VppClient, spec: TranslationSpec) -> int:
    """Create the translation of ``spec.vip``, or replace its paths; return its id."""
    return vpp.call("cnat_translation_update", **translation_fields(spec)).id


def delete_translation(vpp: VppClient, translation_id: int) -> None:
    vpp.call("cnat_translation_del", id=translation_id)


def dump_translations(vpp: VppClient) -> list[Translation]:
    out = []
    for d in vpp.dump("cnat_translation_dump"):
        t = d.translation
        paths = tuple(
            Path(_endpoint(p.dst_ep), _endpoint(p.src_ep), PathFlags(p.flags & _API_PATH_FLAGS))
            for p in t.paths
        )
        try:
            lb: LbType | int = LbType(t.lb_type)
        except ValueError:
            lb = t.lb_type
        out.append(Translation(t.id, _endpoint(t.vip), _proto(t.ip_proto), lb, paths))
    return out


def set_snat_addresses(
    vpp: VppClient,
    ip4: str | ipaddress.IPv4Address | None = None,
    ip6: str | ipaddress.IPv6Address | None = None,
    *,
    sw_if_index: int = NO_INTERFACE,
) -> None:
    """Set the source addresses SNAT uses (or take them from ``sw_if_index``).

    Setting both families at once keeps one entry for both; VPP reports the
    interface of the IPv6 side.
    """
    vpp.call(
        "cnat_set_snat_addresses",
        snat_ip4=ipaddress.IPv4Address(ip4 or 0),
        snat_ip6=ipaddress.IPv6Address(ip6 or 0),
        sw_if_index=sw_if_index,
    )


def clear_snat_addresses(vpp: VppClient) -> None:
    """Remove the SNAT entry (and with it exclusions, policy and interface maps)."""
    try:
        vpp.call("cnat_set_snat_addresses", snat_ip4=ipaddress.IPv4Address(0),
                 snat_ip6=ipaddress.IPv6Address(0), sw_if_index=NO_INTERFACE)
    except VppApiError as e:
        if e.retval != Retval.FEATURE_DISABLED:  # nothing was set: already clear
            raise


def get_snat_addresses(vpp: VppClient) -> SnatAddresses | None:
    """The default SNAT entry's addresses, or None when none is set."""
    reply = vpp.call("cnat_get_snat_addresses", check=False)
    if reply.retval == Retval.FEATURE_DISABLED:
        return None
    if reply.retval != 0:
        raise VppApiError("cnat_get_snat_addresses", reply.retval)
    return SnatAddresses(reply.snat_ip4, reply.snat_ip6, reply.sw_if_index)


def _require_snat(vpp: VppClient, what: str) -> None:
    if get_snat_addresses(vpp) is None:
        raise SnatNotConfigured(f"{what}: set the cnat SNAT addresses first (VPP has no SNAT entry)")


def add_snat_exclusion(vpp: VppClient, prefix: str | IpNetwork) -> None:
    """Never source-NAT traffic to ``prefix``."""
    _require_snat(vpp, "cnat_snat_policy_add_del_exclude_pfx")
    vpp.call("cnat_snat_policy_add_del_exclude_pfx", is_add=1, prefix=ipaddress.ip_network(prefix))


def del_snat_exclusion(vpp: VppClient, prefix: str | IpNetwork) -> None:
    _require_snat(vpp, "cnat_snat_policy_add_del_exclude_pfx")
    vpp.call("cnat_snat_policy_add_del_exclude_pfx", is_add=0, prefix=ipaddress.ip_network(prefix))


def set_snat_interface(vpp: VppClient, sw_if_index: int, table: SnatIfTable, enable: bool = True) -> None:
    """Add ``sw_if_index`` to (or remove it from) one SNAT interface map."""
    vpp.call("cnat_snat_policy_add_del_if", sw_if_index=sw_if_index, is_add=int(enable), table=int(table))


def set_snat_policy(vpp: VppClient, policy: SnatPolicy) -> None:
    _require_snat(vpp, "cnat_set_snat_policy")
    vpp.call("cnat_set_snat_policy", policy=int(policy))


def enable_feature(vpp: VppClient, sw_if_index: int, enable: bool = True) -> None:
    """Put ``sw_if_index`` on (or take it off) cnat's input/output feature arcs."""
    vpp.call("feature_cnat_enable_disable", sw_if_index=sw_if_index, enable_disable=enable)


def dump_sessions(vpp: VppClient) -> list[Session]:
    out = []
    for d in vpp.dump("cnat_session_dump"):
        t = d.session.tuple
        out.append(Session((t.addr[0], t.port[0]), (t.addr[1], t.port[1]), int(t.ip_proto),
                           d.session.ts_index, d.session.flags))
    return out


def purge_sessions(vpp: VppClient) -> None:
    """Flush every session AND delete every translation (VPP 26.06 does both).

    A reset, not housekeeping: only for tearing cnat down completely.
    """
    vpp.call("cnat_session_purge")
