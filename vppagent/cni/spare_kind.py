"""The ``pod-spare`` reconciler kind: spare af_packet interfaces in VPP, by tag.

Owns ``SpareDescriptor``. A spare's VPP interface is tagged
``vppagent:spare:<host ifname>`` until a pod takes it; from then on the
pod-interface kind owns it (re-tags it), and deleting the spare does nothing.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vppagent.kinds import VppKind
from vppagent.kinds.loopback_kind import KIND as LOOPBACK_KIND
from vppagent.reconcile import Found, Key, Resolver
from vppagent.services import snat_kind
from vppagent.vpp import af_packet, interfaces
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval

from .pool import KIND, TAG_PREFIX, BaseConfig, Rings, Spare, SparePool, attach_af_packet, base_config, base_dependencies


class SpareDescriptor(VppKind):
    """Spare af_packet interfaces by tag. ``delete`` of a spare handed to a pod does nothing."""

    kind = KIND
    retrieve_after: tuple[str, ...] = (LOOPBACK_KIND,)

    def __init__(self, pool: SparePool, *, rings: Rings = Rings()):
        self.pool = pool
        self.rings = rings

    def key(self, value: Spare) -> str:
        return value.host_ifname

    def dependencies(self, value: Spare) -> Iterable[Key]:
        return base_dependencies(value.gateway, value.snat)

    def create(self, vpp: VppClient, value: Spare, resolver: Resolver) -> int:
        sw_if_index = attach_af_packet(vpp, value.host_ifname, value.mac, value.mtu, self.rings)
        try:
            interfaces.set_tag(vpp, sw_if_index, TAG_PREFIX + value.host_ifname)
            base_config(vpp, sw_if_index, BaseConfig(
                value.mtu, value.table_id, resolver.handle(value.gateway) if value.gateway is not None else None,
                value.cnat, value.snat, value.gso_fix))
        except Exception:
            af_packet.delete(vpp, value.host_ifname)
            raise
        return sw_if_index

    def update(self, vpp: VppClient, old: Spare, handle: Any, new: Spare, resolver: Resolver) -> Any:
        raise NotImplementedError("spares are re-created, never updated")

    def delete(self, vpp: VppClient, value: Spare, handle: Any, resolver: Resolver) -> None:
        if self.pool.handed_over(value.host_ifname):
            return  # the pod-interface kind owns it now
        try:
            if value.cnat:  # cnat keeps per-interface maps by index (see the pod-interface kind)
                snat_kind.detach_interface(vpp, handle, snat_kind.InterfaceRole.POD, snat=value.snat)
            af_packet.delete(vpp, value.host_ifname)
        except VppApiError as e:
            if e.retval not in (Retval.INVALID_SW_IF_INDEX, Retval.NO_SUCH_ENTRY, Retval.INVALID_INTERFACE):
                raise

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[Spare]]:
        ours = [i for i in interfaces.dump(vpp) if i.tag.startswith(TAG_PREFIX)]
        return [Found(Spare(i.tag[len(TAG_PREFIX):], i.mac, i.mtu), i.sw_if_index) for i in ours]


__all__ = ["SpareDescriptor"]
