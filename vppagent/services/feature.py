"""The services feature: every Service of the cluster as cnat translations, plus the SNAT entry.

Also: a reject route per owned cluster/external IP (``reject``), and, when
VPP has our ksvc plugin, the cluster IPs of ClientIP-affinity Services as
ksvc services instead of translations (``affinity``).

Owns ``ServiceTranslations`` (the agent's Feature for services):

- ``desired(cluster)``: the full desired set (first sync, resync, any
  change the incremental path cannot take), memoized per Service so that
  an unchanged Service costs a comparison, not an expansion;
- ``desired_delta(cluster, touched)``: the incremental path. Given the keys
  of the Kubernetes objects that changed since the last call, it re-expands
  only the Services they concern (a Service, or the Service an
  EndpointSlice belonged to and now belongs to) and returns the intents to
  drop and to add: one endpoint change is one changed translation. It
  returns None when it cannot (nothing computed yet, or this node's
  addresses changed: every NodePort moves), and the caller then takes the
  full path.
- Problems: refused input (see ``expansion``) and EndpointSlices whose
  Service does not exist; ``problems()`` is always the complete current list.

Must not touch: VPP (its descriptors do, run by the reconciler), the
cluster state (read only), the agent's queue.
"""
from __future__ import annotations

import ipaddress
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vppagent.feature import Feature
from vppagent.model.k8s import EndpointSlice, Node, ObjectKey, Service
from vppagent.model.k8s.service import ServiceType, SessionAffinity
from vppagent.reconcile import Delta, Descriptor, Intent, Problem
from vppagent.vpp import ksvc
from vppagent.vpp.client import VppClient
from vppagent.iptypes import IpAddress, IpNetwork

from . import affinity_kind, reject_kind, snat_kind
from .expansion import Scope, expand, flow_hash_of
from .translation_kind import KIND, ServiceTranslation, TranslationDescriptor, TranslationKey

log = logging.getLogger(__name__)


ALL_HASH_FIELDS = ("src-ip", "dst-ip", "src-port", "dst-port", "proto")


class ServicesView(Protocol):
    """What the feature reads of the cluster (the agent's ``ClusterState`` provides it).

    ``nodes`` and ``slices`` are optional for callers that only have
    services: without ``nodes`` there are no NodePort VIPs, without
    ``slices`` no orphan-slice problems.
    """

    @property
    def services(self) -> Mapping[ObjectKey, Service]: ...

    def slices_of(self, service: ObjectKey) -> Sequence[EndpointSlice]: ...


@dataclass
class _Entry:
    service: Service
    slices: tuple[EndpointSlice, ...]
    intents: list[Intent]
    problems: list[Problem]
    rejects: tuple[IpAddress, ...] = ()  # VIPs that get a reject route (see ``reject``)


class ServiceTranslations(Feature):
    """Feature: every Service of the cluster as cnat translations (and the SNAT entry)."""

    name = "services"
    incremental = True
    watches = ("Service", "EndpointSlice", "Node")

    def __init__(self, service_cidrs: Sequence[IpNetwork], *, external_cidrs: Sequence[IpNetwork] = (),
                 node_port_range: tuple[int, int] = (30000, 32767), node_name: str = "",
                 hash_fields: Sequence[str] = ALL_HASH_FIELDS, snat: bool = False,
                 cluster_cidrs: Sequence[IpNetwork] = (), tables: Sequence[int] = (0,), reject_vips: bool = False):
        self._base = Scope(tuple(service_cidrs), tuple(external_cidrs), tuple(node_port_range), node_name,
                           (), flow_hash_of(hash_fields))
        self.scope = self._base
        self.snat = snat
        self.cluster_cidrs = tuple(cluster_cidrs)
        self._descriptor = TranslationDescriptor(self.scope_owns, self.is_node_address, self._expected)
        self._snat_descriptor = snat_kind.SnatDescriptor()
        self._memo: dict[ObjectKey, _Entry] | None = None
        self._by_key: dict[TranslationKey, ServiceTranslation] = {}
        self._slice_owner: dict[ObjectKey, ObjectKey] = {}
        self._orphans: dict[ObjectKey, Problem] = {}
        self._snat_intents: list[Intent] = []
        self._snat_problems: list[Problem] = []
        self.reject_vips = reject_vips
        self._rejects = reject_kind.RejectRefs(sorted(set(tables)))
        self._reject_descriptor = reject_kind.descriptor(self._rejects.tables, self._owns_reject_vip)
        self._affinity_descriptor = affinity_kind.AffinityDescriptor(lambda vip: self.scope.owns_cluster_ip(vip))
        self._vpp: VppClient | None = None
        self._ksvc = False  # ClientIP affinity by the ksvc plugin (else cnat's source hash)

    @classmethod
    def from_config(cls, cfg: Any) -> "ServiceTranslations":
        """From the agent's ``Config`` (service_cidrs, service_external_cidrs, node_port_range,
        service_hash_fields, service_snat, service_reject, cluster_cidrs, node_name, pod_table_id)."""
        return cls(cfg.service_cidrs, external_cidrs=cfg.service_external_cidrs,
                   node_port_range=cfg.node_port_range, node_name=cfg.node_name,
                   hash_fields=cfg.service_hash_fields, snat=cfg.service_snat, cluster_cidrs=cfg.cluster_cidrs,
                   tables=(0, cfg.pod_table_id), reject_vips=cfg.service_reject)

    @property
    def service_cidrs(self) -> tuple[IpNetwork, ...]:
        return self._base.service_cidrs

    # -- ownership (for the descriptor) ------------------------------------------

    def owns(self, vip: IpAddress, port: int | None = None) -> bool:
        if port is None:
            return self.scope.owns_cluster_ip(vip) or self.scope.owns_external_ip(vip)
        return self.scope.owns(vip, port)

    def scope_owns(self, vip: IpAddress, port: int) -> bool:
        return self.scope.owns(vip, port)

    def is_node_address(self, vip: IpAddress) -> bool:
        return self.scope.is_node_address(vip)

    def _expected(self, key: TranslationKey) -> ServiceTranslation | None:
        return self._by_key.get(key)

    def _owns_reject_vip(self, vip: IpAddress) -> bool:
        return (self.scope.owns_cluster_ip(vip) or self.scope.owns_external_ip(vip)) \
            and not self.scope.is_node_address(vip)

    def descriptors(self) -> list[Descriptor[Any]]:
        out: list[Descriptor[Any]] = [self._descriptor, self._reject_descriptor, self._affinity_descriptor]
        return out + [self._snat_descriptor] if self.snat else out

    def bind_vpp(self, vpp: VppClient) -> None:
        self._vpp = vpp

    def _choose_affinity(self) -> None:
        """ksvc or cnat for ClientIP affinity: follows the connected VPP (a restart may change it)."""
        use = self._vpp is not None and self._vpp.connected and ksvc.available(self._vpp)
        if use != self._ksvc:
            self._ksvc = use
            self._memo = {} if self._memo is not None else None  # affinity Services move
            log.info("ClientIP session affinity by " + ("the ksvc plugin (with its timeout)" if use else
                     "cnat's source-address hash (no timeout: VPP lacks the ksvc plugin)"))

    # -- the full path --------------------------------------------------------------

    def desired(self, cluster: ServicesView) -> tuple[list[Intent], list[Problem]]:
        self._set_node(cluster)
        self._choose_affinity()
        old = self._memo or {}
        memo: dict[ObjectKey, _Entry] = {}
        for key, svc in cluster.services.items():
            slices = tuple(cluster.slices_of(key))
            hit = old.get(key)
            memo[key] = hit if hit is not None and hit.service == svc and hit.slices == slices \
                else self._expand(key, svc, slices)
        self._memo = memo
        self._by_key = {}
        self._rejects.reset()
        intents: list[Intent] = []
        for key, entry in memo.items():
            for i in entry.intents:
                if i.kind == KIND:
                    self._by_key.setdefault(i.value.key, i.value)
            intents.extend(entry.intents)
            self._rejects.set(key, (), entry.rejects, [], [])
        intents.extend(self._rejects.intents())
        all_slices: Mapping[ObjectKey, EndpointSlice] = getattr(cluster, "slices", {}) or {}
        self._slice_owner = {}
        self._orphans = {}
        for k, s in all_slices.items():
            owner = s.service_key
            if owner is not None:
                self._slice_owner[k] = owner
                if owner not in cluster.services:
                    self._orphans[k] = _orphan(k, owner)
        intents.extend(self._snat_intents)
        return intents, self.problems()

    # -- the incremental path ---------------------------------------------------------

    def desired_delta(self, cluster: ServicesView, touched: Collection[ObjectKey]) -> Delta | None:
        """The change of the desired set since the last call, given which objects changed;
        None: take the full path (``desired``)."""
        if self._memo is None:
            return None
        if any(k.kind == "Node" for k in touched):
            before = (self.scope, self._snat_intents)
            self._set_node(cluster)
            if (self.scope, self._snat_intents) != before:
                return None  # every NodePort (and the SNAT entry) may move
        all_slices: Mapping[ObjectKey, EndpointSlice] = getattr(cluster, "slices", {}) or {}
        services: set[ObjectKey] = set()
        for k in touched:
            if k.kind == "Service":
                services.add(k)
                if k in cluster.services:
                    # Its slices are not orphans any more. (A deleted Service's
                    # slices are not reported: the garbage collector removes them.)
                    for s in cluster.slices_of(k):
                        self._orphans.pop(s.key, None)
            elif k.kind == "EndpointSlice":
                prev = self._slice_owner.pop(k, None)
                if prev is not None:
                    services.add(prev)
                s = all_slices.get(k)
                self._orphans.pop(k, None)
                if s is not None and s.service_key is not None:
                    self._slice_owner[k] = s.service_key
                    services.add(s.service_key)
                    self._check_orphan(cluster, k, s)
        removed: list[Intent] = []
        added: list[Intent] = []
        for key in services:
            old = self._memo.get(key)
            svc = cluster.services.get(key)
            if svc is None:
                if old is not None:
                    del self._memo[key]
                    removed.extend(old.intents)
                    self._rejects.set(key, old.rejects, (), removed, added)
                continue
            slices = tuple(cluster.slices_of(key))
            if old is not None and old.service == svc and old.slices == slices:
                continue
            entry = self._expand(key, svc, slices)
            self._memo[key] = entry
            before = set(old.intents) if old is not None else set()
            after = set(entry.intents)
            if old is not None:
                removed.extend(i for i in old.intents if i not in after)
            added.extend(i for i in entry.intents if i not in before)
            self._rejects.set(key, old.rejects if old is not None else (), entry.rejects, removed, added)
        for i in removed:
            if i.kind == KIND and self._by_key.get(i.value.key) == i.value:
                del self._by_key[i.value.key]
        for i in added:
            if i.kind == KIND:
                self._by_key[i.value.key] = i.value
        return Delta(removed, added, self.problems())

    # -- helpers ---------------------------------------------------------------------

    def problems(self) -> list[Problem]:
        out = [p for e in (self._memo or {}).values() if e.problems for p in e.problems]
        out.extend(self._orphans.values())
        out.extend(self._snat_problems)
        return out

    def _expand(self, key: ObjectKey, svc: Service, slices: tuple[EndpointSlice, ...]) -> _Entry:
        values, problems = expand(svc, slices, self.scope)
        by_ksvc = self._ksvc and svc.session_affinity is SessionAffinity.CLIENT_IP
        intents = [Intent(affinity_kind.KIND, affinity_kind.from_translation(v, svc.session_affinity_timeout_s), key)
                   if by_ksvc and self.scope.owns_cluster_ip(v.vip) else Intent(KIND, v, key) for v in values]
        programmed = bool(svc.cluster_ips) and not svc.headless and svc.type is not ServiceType.EXTERNAL_NAME \
            and not any(p.reason == "InvalidService" for p in problems)
        rejects = tuple(ip for ip in (*svc.cluster_ips, *svc.lb_ingress_ips, *svc.external_ips)
                        if self._owns_reject_vip(ip)) if programmed and self.reject_vips else ()
        return _Entry(svc, slices, intents, problems, tuple(dict.fromkeys(rejects)))

    def _check_orphan(self, cluster: ServicesView, key: ObjectKey, s: EndpointSlice) -> None:
        svc_key = s.service_key
        if svc_key is not None and svc_key not in cluster.services:
            self._orphans[key] = _orphan(key, svc_key)
        else:
            self._orphans.pop(key, None)

    def _set_node(self, cluster: ServicesView) -> None:
        """This node's addresses: NodePort VIPs, and the SNAT addresses."""
        nodes: Mapping[str, Node] = getattr(cluster, "nodes", {}) or {}
        me = nodes.get(self._base.node_name) if self._base.node_name else None
        ips: tuple[IpAddress, ...] = ()
        if me is not None:
            ips = tuple(dict.fromkeys((*me.internal_ips, *me.external_ips)))
        scope = Scope(self._base.service_cidrs, self._base.external_cidrs, self._base.node_port_range,
                      self._base.node_name, ips, self._base.flow_hash)
        if scope != self.scope:
            self.scope = scope
            self._memo = {} if self._memo is not None else None  # every expansion depends on the node
        self._snat_intents, self._snat_problems = [], []
        if not self.snat:
            return
        v4 = next((ip for ip in (me.internal_ips if me else ()) if ip.version == 4), None)
        v6 = next((ip for ip in (me.internal_ips if me else ()) if ip.version == 6), None)
        if v4 is None and v6 is None:
            if me is not None:
                self._snat_problems = [Problem(me.key, "NoInternalIPForSnat",
                                               f"node {me.name} has no InternalIP: pod egress and NodePort "
                                               "traffic to remote backends are not source-NATed")]
            return
        exclusions = frozenset((*self.cluster_cidrs, *self._base.service_cidrs))
        value = snat_kind.SnatConfig(v4 or ipaddress.IPv4Address(0), v6 or ipaddress.IPv6Address(0), exclusions)
        self._snat_intents = [Intent(snat_kind.KIND, value, me.key if me else None)]


def _orphan(key: ObjectKey, svc_key: ObjectKey) -> Problem:
    return Problem(key, "EndpointSliceWithoutService",
                   f"EndpointSlice {key.namespace}/{key.name} belongs to Service "
                   f"{svc_key.namespace}/{svc_key.name}, which does not exist; ignored")
