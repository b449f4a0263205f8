"""ClientIP session affinity with its timeout: the ``ksvc-service`` kind (our vpp_plugins/ksvc).

Why: cnat has no affinity table. Hashing on the client address keeps a
client on one backend for as long as the backend set holds, but never lets
it go after ``timeoutSeconds``, which Kubernetes promises (and its e2e
tests check). When the connected VPP has ksvc, the cluster IPs of
``sessionAffinity: ClientIP`` Services are load-balanced by ksvc instead of
cnat: a client's new connections within the timeout of its last packet go
to the same backend; after it, anywhere. ksvc rewrites destinations only
(no source NAT), so NodePort, LoadBalancer and external-IP VIPs of such
Services stay with cnat's source hash. Without ksvc, everything stays with
cnat, as before (``ServiceTranslations`` decides).

Ownership: ksvc is ours alone; the agent owns every ksvc service whose VIP
is inside its service CIDRs (the others are never touched).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from vppagent.kinds import VppKind
from vppagent.reconcile import Found, Resolver
from vppagent.vpp import ksvc
from vppagent.vpp.client import VppClient
from vppagent.iptypes import IpAddress

from .translation_kind import ServiceTranslation

KIND = "ksvc-service"
DEFAULT_TIMEOUT_S = 10800  # Kubernetes' default sessionAffinityConfig.clientIP.timeoutSeconds


def from_translation(t: ServiceTranslation, timeout_s: int | None) -> ksvc.KsvcService:
    timeout = min(max(1, timeout_s or DEFAULT_TIMEOUT_S), ksvc.MAX_TIMEOUT_S)
    return ksvc.KsvcService(t.vip, int(t.proto), t.port, tuple((b.address, b.port) for b in t.backends), timeout)


class AffinityDescriptor(VppKind):
    kind = KIND

    def __init__(self, owns_vip: Callable[[IpAddress], bool]):
        self._owns_vip = owns_vip

    def key(self, value: ksvc.KsvcService) -> Any:
        return value.key

    def create(self, vpp: VppClient, value: ksvc.KsvcService, resolver: Resolver) -> Any:
        ksvc.service_update(vpp, value)
        return None

    def can_update(self, old: ksvc.KsvcService, new: ksvc.KsvcService) -> bool:
        return True  # one message replaces the backends and the timeout

    def update(self, vpp: VppClient, old: ksvc.KsvcService, handle: Any, new: ksvc.KsvcService,
               resolver: Resolver) -> Any:
        ksvc.service_update(vpp, new)
        return None

    def delete(self, vpp: VppClient, value: ksvc.KsvcService, handle: Any, resolver: Resolver) -> None:
        ksvc.service_del(vpp, value.vip, value.proto, value.port, missing_ok=True)

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[ksvc.KsvcService]]:
        if not ksvc.available(vpp):
            return []
        return [Found(s) for s in ksvc.service_dump(vpp) if self._owns_vip(s.vip)]


__all__ = ["AffinityDescriptor", "DEFAULT_TIMEOUT_S", "KIND", "from_translation"]
