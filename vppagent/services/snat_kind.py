"""Source NAT for services and pod egress: the cnat SNAT entry, as a reconciler kind.

Owns the kind ``cnat-snat``: one object (VPP's default SNAT entry, table 0)
holding the SNAT addresses (this node's first InternalIP of each family),
the ``k8s`` SNAT policy, and the prefixes never source-NATed (the cluster's
pod and service CIDRs). With VPP's ``k8s`` policy that gives:

- pod traffic leaving the cluster (from an interface in the pod maps, to a
  destination outside the excluded prefixes): source-NATed to the node;
- NodePort / external traffic sent to a backend on another node (neither
  the input nor the output interface is a pod's): source-NATed, so that
  the answer comes back through this node;
- traffic from outside to a local backend (``externalTrafficPolicy:
  Local``): not source-NATed, the client's address is preserved;
- a pod reaching itself through a service (hairpin: after translation its
  source equals its destination): source-NATed.

Also owns ``attach_interface``: what cnat needs on an interface for the
above (the cnat feature arcs, and the SNAT interface maps by role). The
owners of those interfaces (CNI, uplink) call it; this module never picks
interfaces itself.

VPP 26.06 has no dump of exclusions, the policy or interface maps: retrieve
reports the entry's addresses with ``complete=False``, so a resync re-applies
the exclusions and policy (every call is idempotent).

Must not touch: translations, routes, interfaces' addresses.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from vppagent.kinds import VppKind
from vppagent.reconcile import Found, Resolver
from vppagent.vpp import cnat, ksvc
from vppagent.vpp.client import VppClient
from vppagent.iptypes import IpNetwork


KIND = "cnat-snat"


@dataclass(frozen=True)
class SnatConfig:
    ip4: ipaddress.IPv4Address
    ip6: ipaddress.IPv6Address
    exclusions: frozenset[IpNetwork] = frozenset()
    policy: cnat.SnatPolicy = cnat.SnatPolicy.K8S
    # False when read back from VPP: exclusions and policy cannot be dumped.
    complete: bool = True


class SnatDescriptor(VppKind):
    """The default cnat SNAT entry (one object, key ``default``)."""

    kind = KIND

    def key(self, value: SnatConfig) -> Hashable:
        return "default"

    def create(self, vpp: VppClient, value: SnatConfig, resolver: Resolver) -> None:
        # The addresses first: exclusions and policy hang off the entry they make.
        cnat.set_snat_addresses(vpp, value.ip4, value.ip6)
        cnat.set_snat_policy(vpp, value.policy)
        for pfx in sorted(value.exclusions, key=str):
            cnat.add_snat_exclusion(vpp, pfx)

    def can_update(self, old: SnatConfig, new: SnatConfig) -> bool:
        return True

    def update(self, vpp: VppClient, old: SnatConfig, handle: Any, new: SnatConfig, resolver: Resolver) -> None:
        if (old.ip4, old.ip6) != (new.ip4, new.ip6) or not old.complete:
            cnat.set_snat_addresses(vpp, new.ip4, new.ip6)
        if old.policy != new.policy or not old.complete:
            cnat.set_snat_policy(vpp, new.policy)
        stale = old.exclusions - new.exclusions
        fresh = new.exclusions if not old.complete else new.exclusions - old.exclusions
        for pfx in sorted(stale, key=str):
            cnat.del_snat_exclusion(vpp, pfx)
        for pfx in sorted(fresh, key=str):
            cnat.add_snat_exclusion(vpp, pfx)

    def delete(self, vpp: VppClient, value: SnatConfig, handle: Any, resolver: Resolver) -> None:
        cnat.clear_snat_addresses(vpp)  # drops exclusions, policy and interface maps with it

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[SnatConfig]]:
        got = cnat.get_snat_addresses(vpp)
        if got is None:
            return []
        return [Found(SnatConfig(got.ip4, got.ip6, complete=False))]


class InterfaceRole(StrEnum):
    POD = "pod"  # a pod's interface: its traffic may be source-NATed on the way out
    UPLINK = "uplink"  # the node's uplink: services are reached through it
    HOST = "host"  # the host's interface (tap): traffic punted to the host is never NATed


# Where ksvc's clients are: it serves cluster IPs, which only pods and the host reach.
_KSVC_ROLES = frozenset({InterfaceRole.POD, InterfaceRole.HOST})


def attach_interface(vpp: VppClient, sw_if_index: int, role: InterfaceRole, *, snat: bool = True) -> None:
    """Put cnat on ``sw_if_index`` for its role (idempotent); ``snat``: add it to the SNAT maps too
    (needs the SNAT entry: program ``cnat-snat`` first). Pod and host interfaces also get the
    ksvc plugin's nodes when VPP has it (ClientIP affinity: ``affinity``)."""
    cnat.enable_feature(vpp, sw_if_index, True)
    if role in _KSVC_ROLES and ksvc.available(vpp):
        ksvc.enable(vpp, sw_if_index, True)
    if not snat:
        return
    if role is InterfaceRole.POD:
        for table in (cnat.SnatIfTable.INCLUDE_V4, cnat.SnatIfTable.INCLUDE_V6, cnat.SnatIfTable.POD):
            cnat.set_snat_interface(vpp, sw_if_index, table)
    elif role is InterfaceRole.HOST:
        cnat.set_snat_interface(vpp, sw_if_index, cnat.SnatIfTable.HOST)


def detach_interface(vpp: VppClient, sw_if_index: int, role: InterfaceRole, *, snat: bool = True) -> None:
    """Undo ``attach_interface`` (before the interface is deleted)."""
    if snat and cnat.get_snat_addresses(vpp) is not None:
        tables = {InterfaceRole.POD: (cnat.SnatIfTable.INCLUDE_V4, cnat.SnatIfTable.INCLUDE_V6, cnat.SnatIfTable.POD),
                  InterfaceRole.HOST: (cnat.SnatIfTable.HOST,)}.get(role, ())
        for table in tables:
            cnat.set_snat_interface(vpp, sw_if_index, table, enable=False)
    if role in _KSVC_ROLES and ksvc.available(vpp):
        ksvc.enable(vpp, sw_if_index, False)
    cnat.enable_feature(vpp, sw_if_index, False)
