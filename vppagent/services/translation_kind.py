"""The cnat translation kind: one VIP:port/protocol and its backends, as the reconciler sees it.

Owns ``ServiceTranslation`` (the value), ``Backend`` and
``TranslationDescriptor`` (the reconciler kind ``cnat-translation``).
Which translations exist is decided elsewhere (``expansion``, ``feature``).

Ownership scheme: cnat translations have no tag. VPP keys them by
(VIP, protocol, port), and so does the agent. The agent owns a translation
when ``owns(vip, port)`` says so: a VIP inside the service CIDRs or the
external (LoadBalancer / external IP) CIDRs, or one of this node's
addresses with a port in the NodePort range; protocol TCP, UDP or SCTP,
never an interface VIP. Retrieve reads those back (VPP's id is the
handle), adopts what matches, and the next pass deletes the rest.

What the 26.06 dump leaves out shapes the value: ``is_real_ip`` and the
flow hash are not reported, and VPP keeps the flow hash and the
load-balancing type of the *first* add. So a change of either is a
delete + create (``can_update``), and retrieve takes the VIP's kind
(``is_real_ip`` for node addresses) from the ownership scheme and the flow
hash from what the agent currently wants for that key (``expected``):
VPP cannot say otherwise, so a flow hash changed while the agent was away
is only corrected when the Service changes again.

Must not touch: SNAT, the cnat feature arc, sessions, Kubernetes objects.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from vppagent.kinds import VppKind
from vppagent.reconcile import Found, Request, Resolver
from vppagent.vpp import cnat
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval
from vppagent.iptypes import IpAddress


KIND = "cnat-translation"
OWNED_PROTOS = frozenset((cnat.Proto.TCP, cnat.Proto.UDP, cnat.Proto.SCTP))

TranslationKey = tuple[IpAddress, int, int]  # (vip, proto, port)


@dataclass(frozen=True, order=True)
class Backend:
    address: IpAddress
    port: int

    def sort_key(self) -> tuple[int, int, int]:
        return (self.address.version, int(self.address), self.port)


@dataclass(frozen=True)
class ServiceTranslation:
    """One VIP:port/proto and its backends (kept sorted and unique, so equal sets compare equal)."""

    vip: IpAddress
    proto: cnat.Proto
    port: int
    backends: tuple[Backend, ...] = ()
    lb_type: cnat.LbType = cnat.LbType.DEFAULT
    # Set by retrieve when VPP holds paths the agent never programs (a source
    # endpoint, an interface backend): never equal to a desired value.
    foreign_paths: bool = False
    # True for a VIP that is a real address of this node (NodePorts): VPP
    # then interposes on the address instead of taking it over.
    is_real_ip: bool = False
    flow_hash: int = 0  # ip_flow_hash_config bits; 0: VPP's default

    def __post_init__(self) -> None:
        # Sorted and unique by (family, address, port), without hashing
        # ipaddress objects (slow): this runs once per translation at scale.
        keys = [(b.address.version, int(b.address), b.port) for b in self.backends]
        if any(x >= y for x, y in zip(keys, keys[1:])):
            unique = dict(zip(keys, self.backends))
            object.__setattr__(self, "backends", tuple(unique[k] for k in sorted(unique)))

    @property
    def key(self) -> TranslationKey:
        return (self.vip, int(self.proto), self.port)

    def request_fields(self) -> dict[str, Any]:
        """``translation_fields(self.spec())``, built directly: the hot path of bulk programming
        (the addresses are already ``ipaddress`` objects, so nothing is parsed again)."""
        if not self.backends:
            raise ValueError(f"cnat translation {self.vip}:{self.port} has no backend; VPP 26.06 cannot take that")
        af = 1 if self.vip.version == 6 else 0
        src = _NO_SOURCE[af]
        return {"translation": {
            "vip": {"addr": self.vip, "sw_if_index": cnat.NO_INTERFACE, "if_af": af, "port": self.port},
            "id": 0, "ip_proto": int(self.proto), "is_real_ip": self.is_real_ip,
            "flags": int(cnat.TranslationFlags.ALLOC_PORT), "lb_type": int(self.lb_type),
            "n_paths": len(self.backends), "flow_hash_config": self.flow_hash,
            "paths": [{"dst_ep": {"addr": b.address, "sw_if_index": cnat.NO_INTERFACE, "if_af": af, "port": b.port},
                       "src_ep": src, "flags": 0} for b in self.backends],
        }}

    def spec(self) -> cnat.TranslationSpec:
        return cnat.TranslationSpec(
            vip=cnat.Endpoint.of(self.vip, self.port),
            proto=self.proto,
            paths=tuple(cnat.Path(cnat.Endpoint.of(b.address, b.port)) for b in self.backends),
            lb_type=self.lb_type,
            is_real_ip=self.is_real_ip,
            flow_hash_config=self.flow_hash,
        )


# The source endpoint of a path that keeps the client's source, per if_af.
_NO_SOURCE = tuple({"addr": zero, "sw_if_index": cnat.NO_INTERFACE, "if_af": af, "port": 0}
                   for af, zero in ((0, ipaddress.IPv4Address(0)), (1, ipaddress.IPv6Address(0))))


class TranslationDescriptor(VppKind):
    """cnat translations of Services; batchable (update is an upsert returning the id).

    ``owns(vip, port)``: is a translation on this VIP:port the agent's.
    ``is_node_address(vip)``: is the VIP a real address of this node.
    ``expected(key)``: the value the agent wants for a key, if any (for what
    the dump does not report).
    """

    kind = KIND

    def __init__(self, owns: Callable[[IpAddress, int], bool],
                 is_node_address: Callable[[IpAddress], bool] = lambda ip: False,
                 expected: Callable[[TranslationKey], ServiceTranslation | None] = lambda key: None):
        self._owns = owns
        self._is_node_address = is_node_address
        self._expected = expected

    def key(self, value: ServiceTranslation) -> Hashable:
        return value.key

    def create(self, vpp: VppClient, value: ServiceTranslation, resolver: Resolver) -> int:
        return cnat.update_translation(vpp, value.spec())

    def can_update(self, old: ServiceTranslation, new: ServiceTranslation) -> bool:
        # VPP keeps the load-balancing type and flow hash of the first add,
        # and the VIP's FIB entry kind: changing them needs a new translation.
        return (old.lb_type == new.lb_type and old.flow_hash == new.flow_hash
                and old.is_real_ip == new.is_real_ip)

    def update(self, vpp: VppClient, old: ServiceTranslation, handle: Any, new: ServiceTranslation,
               resolver: Resolver) -> int:
        return cnat.update_translation(vpp, new.spec())

    def delete(self, vpp: VppClient, value: ServiceTranslation, handle: Any, resolver: Resolver) -> None:
        try:
            cnat.delete_translation(vpp, handle)
        except VppApiError as e:
            if e.retval != Retval.NO_SUCH_ENTRY:
                raise

    def create_request(self, value: ServiceTranslation, resolver: Resolver) -> Request:
        return ("cnat_translation_update", value.request_fields())

    def update_request(self, old: ServiceTranslation, handle: Any, new: ServiceTranslation,
                       resolver: Resolver) -> Request:
        return ("cnat_translation_update", new.request_fields())

    def delete_request(self, value: ServiceTranslation, handle: Any, resolver: Resolver) -> Request:
        return ("cnat_translation_del", {"id": handle})

    def finish(self, op: str, request: Request, reply: Any, old_handle: Any) -> Any:
        if op == "delete":
            if reply.retval not in (0, Retval.NO_SUCH_ENTRY):
                raise VppApiError(request[0], reply.retval, {"id": request[1]["id"]})
            return None
        if reply.retval != 0:
            vip = request[1]["translation"]["vip"]
            raise VppApiError(request[0], reply.retval, {"vip": f"{vip['addr']}:{vip['port']}"})
        return reply.id

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[ServiceTranslation]]:
        out: list[Found[ServiceTranslation]] = []
        for t in cnat.dump_translations(vpp):
            if t.vip.sw_if_index != cnat.NO_INTERFACE or t.proto not in OWNED_PROTOS:
                continue
            if not self._owns(t.vip.address, t.vip.port):
                continue
            backends = []
            foreign = False
            for p in t.paths:
                src = p.src
                if (p.dst.sw_if_index != cnat.NO_INTERFACE or p.flags
                        or (src is not None and (not src.address.is_unspecified or src.port
                                                 or src.sw_if_index != cnat.NO_INTERFACE))):
                    foreign = True
                backends.append(Backend(p.dst.address, p.dst.port))
            key = (t.vip.address, int(t.proto), t.vip.port)
            want = self._expected(key)
            out.append(Found(ServiceTranslation(
                t.vip.address, cnat.Proto(t.proto), t.vip.port, tuple(backends), cnat.LbType(int(t.lb_type)),
                foreign, is_real_ip=self._is_node_address(t.vip.address),
                flow_hash=want.flow_hash if want is not None else 0), handle=t.id))
        return out

