"""ClusterIP services as cnat translations: expansion and the translation kind.

Owns:

- ``expand``: one Service plus its EndpointSlices -> one ``ServiceTranslation``
  per (cluster IP, protocol, port), with the *ready* endpoints of the slices
  of that IP's family as backends, at the slice's port for the service
  port's name. TCP, UDP and SCTP; IPv4 and IPv6 (dual-stack services get
  one translation per family). Headless and ExternalName services get none.
- ``TranslationDescriptor``: the reconciler kind ``cnat-translation``.
- ``ServiceTranslations``: the feature (which kinds it watches, its
  descriptor, the desired translations of the whole cluster, memoized per
  Service so that one changed Service costs one expansion).

Ownership scheme: cnat translations have no tag. VPP keys them by
(VIP, protocol, port), and so does the agent; the agent owns every
translation whose VIP is an address inside the configured service CIDRs
(``service_cidrs``) and whose protocol is TCP, UDP or SCTP. Retrieve reads
those back (the id VPP gave each one is its handle), adopts the ones that
match, deletes the others; translations with a VIP outside the service
CIDRs, or on an interface, are never touched. A Service whose cluster IP
lies outside the service CIDRs is not programmed (it could not be owned):
it is reported as a Problem instead.

Must not touch: SNAT, the cnat feature arc on interfaces, sessions,
NodePort/LoadBalancer/externalIPs, session affinity, traffic policies:
those come with the deeper service features. A service port without ready
endpoints has no translation (VPP 26.06 crashes on a path-less one), so its
VIP falls through to routing; rejecting such connections (kube-proxy's
REJECT) comes with the deeper features.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vppagent.model.k8s import AddressType, EndpointSlice, ObjectKey, Protocol as L4Protocol, Service, ServiceType
from vppagent.reconcile import Found, Intent, Key, Problem, Request, Resolver, default_is_retriable
from vppagent.vpp import cnat
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

KIND = "cnat-translation"

_PROTO = {L4Protocol.TCP: cnat.Proto.TCP, L4Protocol.UDP: cnat.Proto.UDP, L4Protocol.SCTP: cnat.Proto.SCTP}
_OWNED_PROTOS = frozenset(_PROTO.values())


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

    def __post_init__(self) -> None:
        ordered = tuple(sorted(set(self.backends), key=Backend.sort_key))
        if ordered != self.backends:
            object.__setattr__(self, "backends", ordered)

    def request_fields(self) -> dict[str, Any]:
        """``translation_fields(self.spec())``, built directly: the hot path of bulk programming
        (the addresses are already ``ipaddress`` objects, so nothing is parsed again)."""
        if not self.backends:
            raise ValueError(f"cnat translation {self.vip}:{self.port} has no backend; VPP 26.06 cannot take that")
        af = 1 if self.vip.version == 6 else 0
        src = _NO_SOURCE[af]
        return {"translation": {
            "vip": {"addr": self.vip, "sw_if_index": cnat.NO_INTERFACE, "if_af": af, "port": self.port},
            "id": 0, "ip_proto": int(self.proto), "is_real_ip": False,
            "flags": int(cnat.TranslationFlags.ALLOC_PORT), "lb_type": int(self.lb_type),
            "n_paths": len(self.backends), "flow_hash_config": 0,
            "paths": [{"dst_ep": {"addr": b.address, "sw_if_index": cnat.NO_INTERFACE, "if_af": af, "port": b.port},
                       "src_ep": src, "flags": 0} for b in self.backends],
        }}

    def spec(self) -> cnat.TranslationSpec:
        return cnat.TranslationSpec(
            vip=cnat.Endpoint.of(self.vip, self.port),
            proto=self.proto,
            paths=tuple(cnat.Path(cnat.Endpoint.of(b.address, b.port)) for b in self.backends),
            lb_type=self.lb_type,
        )


# The source endpoint of a path that keeps the client's source, per if_af.
_NO_SOURCE = tuple({"addr": zero, "sw_if_index": cnat.NO_INTERFACE, "if_af": af, "port": 0}
                   for af, zero in ((0, ipaddress.IPv4Address(0)), (1, ipaddress.IPv6Address(0))))


# -- expansion ------------------------------------------------------------------


def _family(ip: IpAddress) -> AddressType:
    return AddressType.IPV4 if ip.version == 4 else AddressType.IPV6


def expand(svc: Service, slices: Iterable[EndpointSlice], owns: Callable[[IpAddress], bool],
           cidrs_text: str = "") -> tuple[list[ServiceTranslation], list[Problem]]:
    """The translations of one Service (see the module docstring), and what could not be programmed."""
    if svc.type is ServiceType.EXTERNAL_NAME or svc.headless or not svc.cluster_ips:
        return [], []
    slices = tuple(slices)
    out: list[ServiceTranslation] = []
    problems: list[Problem] = []
    for ip in svc.cluster_ips:
        if not owns(ip):
            problems.append(Problem(svc.key, "ClusterIPOutsideServiceCIDRs",
                                    f"cluster IP {ip} is outside the service CIDRs ({cidrs_text}) "
                                    "this agent owns; not programmed"))
            continue
        family = [s for s in slices if s.address_type is _family(ip)]
        for sp in svc.ports:
            backends: set[Backend] = set()
            for s in family:
                port = next((p.port for p in s.ports
                             if p.name == sp.name and p.protocol is sp.protocol and p.port is not None), None)
                if port is None:
                    continue
                for ep in s.endpoints:
                    # kube-proxy semantics: ready endpoints, first address.
                    if ep.ready and ep.addresses:
                        backends.add(Backend(ep.addresses[0], port))
            if backends:
                # VPP 26.06 cannot hold a translation without a path (it crashes):
                # a port without ready endpoints has no translation.
                out.append(ServiceTranslation(ip, _PROTO[sp.protocol], sp.port, tuple(backends)))
    return out, problems


# -- the reconciler kind ---------------------------------------------------------------


class TranslationDescriptor:
    """cnat translations of ClusterIPs; batchable (update is an upsert returning the id)."""

    kind = KIND
    retrieve_after: tuple[str, ...] = ()

    def __init__(self, owns: Callable[[IpAddress], bool]):
        self._owns = owns

    def key(self, value: ServiceTranslation) -> Hashable:
        return (value.vip, int(value.proto), value.port)

    def dependencies(self, value: ServiceTranslation) -> Iterable[Key]:
        return ()

    def create(self, vpp: VppClient, value: ServiceTranslation, resolver: Resolver) -> int:
        return cnat.update_translation(vpp, value.spec())

    def can_update(self, old: ServiceTranslation, new: ServiceTranslation) -> bool:
        # VPP keeps the load-balancing type of the first add: a new one needs a new translation.
        return old.lb_type == new.lb_type

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
            if t.vip.sw_if_index != cnat.NO_INTERFACE or t.proto not in _OWNED_PROTOS:
                continue
            if not self._owns(t.vip.address):
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
            out.append(Found(ServiceTranslation(t.vip.address, cnat.Proto(t.proto), t.vip.port,
                                                tuple(backends), cnat.LbType(int(t.lb_type)), foreign),
                             handle=t.id))
        return out

    def is_retriable(self, error: Exception) -> bool:
        return default_is_retriable(error)


# -- the feature --------------------------------------------------------------------------


class ServicesView(Protocol):
    """What the feature reads of the cluster (the agent's cluster state provides it)."""

    @property
    def services(self) -> Mapping[ObjectKey, Service]: ...

    def slices_of(self, service: ObjectKey) -> Sequence[EndpointSlice]: ...


class ServiceTranslations:
    """Feature: every ClusterIP Service of the cluster as cnat translations."""

    name = "services"
    watches = ("Service", "EndpointSlice")

    def __init__(self, service_cidrs: Sequence[IpNetwork]):
        self.service_cidrs = tuple(service_cidrs)
        self._cidrs_text = ", ".join(map(str, self.service_cidrs)) or "none"
        self._descriptor = TranslationDescriptor(self.owns)
        # Service key -> (service, its slices, its intents, its problems)
        self._memo: dict[ObjectKey, tuple[Service, tuple[EndpointSlice, ...], list[Intent], list[Problem]]] = {}

    def owns(self, vip: IpAddress) -> bool:
        return any(vip.version == c.version and vip in c for c in self.service_cidrs)

    def descriptors(self) -> list[TranslationDescriptor]:
        return [self._descriptor]

    def desired(self, cluster: ServicesView) -> tuple[list[Intent], list[Problem]]:
        intents: list[Intent] = []
        problems: list[Problem] = []
        memo: dict[ObjectKey, tuple[Service, tuple[EndpointSlice, ...], list[Intent], list[Problem]]] = {}
        for key, svc in cluster.services.items():
            slices = tuple(cluster.slices_of(key))
            hit = self._memo.get(key)
            if hit is not None and hit[0] == svc and hit[1] == slices:
                entry = hit
            else:
                values, probs = expand(svc, slices, self.owns, self._cidrs_text)
                entry = (svc, slices, [Intent(KIND, v, key) for v in values], probs)
            memo[key] = entry
            intents.extend(entry[2])
            problems.extend(entry[3])
        self._memo = memo
        return intents, problems
