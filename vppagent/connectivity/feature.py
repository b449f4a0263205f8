"""``NodeConnectivity``: routes, tunnels and encryption towards every other node.

Owns the feature that turns Nodes into the desired objects of the kinds
``node-tunnel``, ``node-ipsec``, ``node-wg``, ``node-wg-peer`` and
``node-route``, per peer node:

- the *mode* (configuration) says how clear traffic goes: ``flat`` (a route
  per remote pod CIDR via the node's InternalIP), ``ipip`` or ``vxlan`` (a
  tunnel per peer and the routes through it);
- the pair's *encryption* (``encryption.decide`` over both Nodes'
  annotations) overrides it: ``ipsec`` (an ``ipsecN`` tunnel protected by
  ESP SAs derived with ``ipsec.derive_pair``), ``wireguard`` (one peer on
  this node's ``wg`` interface, allowed IPs = the peer's pod CIDRs, routes
  via it), ``blocked`` (drop routes);
- keys: this node's X25519 keys live in ``key_dir`` (``ipsec.key``,
  ``wireguard.key``, 0600, created on first use); ``annotations()`` gives
  what the agent must publish on this Node. A pair is only encrypted once
  this node's published key is the one it holds (the peer derives from the
  published one);
- rekeying: a new generation of a pair's keys (a peer's new public key or
  key epoch, or ours) goes through ``ipsec.PairRekey`` (make before break);
  ``next_change()`` tells the agent when to recompute without any input
  changing; ``rotate_if_due`` advances this node's epoch when its lifetime
  (time, or bytes through an SA as measured by the caller) is reached.

Ownership schemes are the kinds' own (tags, SA id range, route prefixes).
Must not touch: Kubernetes (the agent publishes ``annotations()``), pod
interfaces, services. The private keys never leave ``ipsec.NodeKey`` and
the values of the kinds (all ``repr=False`` on secrets).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipsec import (IPSEC_KEY_EPOCH, IPSEC_PUBLIC_KEY, WIREGUARD_PUBLIC_KEY, EpochStore, KeyNegotiationError,
                   Lifetime, NodeKey, PairEpoch, PairRekey, RekeyTimers, decode_public, derive_pair,
                   inbound_collisions, load_or_create, parse_epoch)
from ipsec.derive import canonical
from vppagent.feature import Feature
from vppagent.model.cluster_state import ClusterState
from vppagent.model.k8s import Node, ObjectKey
from vppagent.reconcile import Intent, Key, Problem
from vppagent.kinds.route_kind import Hop, OwnedRoute
from vppagent.iptypes import IpAddress, IpNetwork

from . import encryption as enc
from .ipsec_kind import KIND as IPSEC_KIND, EspSa, IpsecDescriptor, IpsecProtection
from .route_scope import KIND as ROUTE_KIND, ClusterRouteScope
from .peer_route_kind import PeerRouteDescriptor, drop_route
from .tunnel_kind import (DEFAULT_VNI, KIND as TUNNEL_KIND, VXLAN_NEXT_HOP, DecapNext, NodeTunnel, TunnelDescriptor,
                          ip_input_next, tunnel_name)
from .wireguard_kind import (DEFAULT_KEEPALIVE_S, DEFAULT_PORT, KIND as WG_KIND, PEER_KIND as WG_PEER_KIND,
                             WgInterface, WgInterfaceDescriptor, WgPeer, WgPeerDescriptor)

log = logging.getLogger(__name__)

MODES = ("flat", "ipip", "vxlan")
WG_NAME = "node"
IPSEC_KEY_FILE = "ipsec.key"
WIREGUARD_KEY_FILE = "wireguard.key"
EPOCH_FILE = "ipsec.epoch"


@dataclass(frozen=True)
class EncryptionSettings:
    key_dir: Path
    default: str = "none"  # this node's choice when its Node has no encryption annotation
    wireguard_port: int = DEFAULT_PORT  # every node listens on it (peers are sent to it)
    keepalive_s: int = DEFAULT_KEEPALIVE_S
    timers: RekeyTimers = field(default_factory=RekeyTimers)
    lifetime: Lifetime = field(default_factory=Lifetime)


@dataclass
class _Keys:
    """This node's key pairs, loaded lazily; a load failure is kept as a message and retried."""

    key_dir: Path
    ipsec: NodeKey | None = None
    wireguard: NodeKey | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def load(self) -> None:
        for attr, fname in (("ipsec", IPSEC_KEY_FILE), ("wireguard", WIREGUARD_KEY_FILE)):
            if getattr(self, attr) is not None:
                continue
            try:
                setattr(self, attr, load_or_create(self.key_dir / fname))
                self.errors.pop(attr, None)
            except (KeyNegotiationError, OSError) as e:
                self.errors[attr] = str(e)


class NodeConnectivity(ClusterRouteScope, Feature):
    """Feature: pods on this node reach pods on every other node (see the module doc)."""

    name = "connectivity"
    watches = ("Node",)

    def __init__(self, node_name: str, cluster_cidrs: Sequence[IpNetwork], *, mode: str = "flat",
                 table_id: int = 0, unnumbered: Key | None = None, vni: int = DEFAULT_VNI,
                 encryption: EncryptionSettings | None = None, clock: Callable[[], float] = time.monotonic,
                 registry: Any = None, vxlan_decap_next: DecapNext = ip_input_next):
        if mode not in MODES:
            raise ValueError(f"unknown connectivity mode {mode!r} (known: {', '.join(MODES)})")
        super().__init__(cluster_cidrs, table_id)
        self.node_name = node_name
        self.mode = mode
        self.unnumbered = unnumbered
        self.vni = vni
        self.settings = encryption
        self._clock = clock
        self._keys = _Keys(encryption.key_dir) if encryption is not None else None
        self._epochs = EpochStore(encryption.key_dir / EPOCH_FILE) if encryption is not None else None
        self._epoch_started = clock()
        self._rekey: dict[str, PairRekey] = {}
        self.pairs: dict[str, str] = {}  # peer -> outcome (encryption.OUTCOMES)
        lo = (unnumbered.kind,) if unnumbered is not None else ()
        self._route_d = PeerRouteDescriptor(ROUTE_KIND, self.owns, self._tables,
                                            interface_kinds=(TUNNEL_KIND, WG_KIND))
        self._descriptors = [TunnelDescriptor(interface_kinds=lo, vxlan_decap_next=vxlan_decap_next), IpsecDescriptor(),
                             WgInterfaceDescriptor(interface_kinds=lo), WgPeerDescriptor(), self._route_d]
        self._gauge = None
        if registry is not None:
            from prometheus_client import Gauge

            self._gauge = Gauge("vppagent_node_pairs", "node pairs by encryption outcome "
                                "(fallback: clear despite a request; blocked: dropped)", ["outcome"],
                                registry=registry)

    # -- feature protocol -------------------------------------------------------------

    def descriptors(self) -> list[Any]:
        return list(self._descriptors)

    def desired(self, cluster: ClusterState) -> tuple[list[Intent], list[Problem]]:
        now = self._clock()
        me = cluster.nodes.get(self.node_name)
        self._own = me.pod_cidrs if me is not None else ()
        intents: list[Intent] = []
        problems: list[Problem] = []
        if me is None:
            problems.append(Problem(ObjectKey("Node", "", self.node_name), "NodeNotFound",
                                    f"this agent's node {self.node_name!r} is not in the cluster; "
                                    "its own pod CIDRs and addresses are unknown"))
            if self.mode != "flat":
                self.pairs = {}
                return intents, problems
            # Flat routes need nothing of this node: keep them (in clear; nothing is known of
            # this node's encryption).
            me = Node(self.node_name)
        local_enc = enc.read(me, self.settings.default if self.settings else "none")
        problems.extend(local_enc.problems)
        # Key files are only created on a node that asks for encryption (once made, they stay
        # published, so that later toggles need no round trip).
        if self._keys is not None and local_enc.kind in (enc.IPSEC, enc.WIREGUARD):
            self._keys.load()
            for what, err in sorted(self._keys.errors.items()):
                problems.append(Problem(me.key, "KeyFileUnusable", f"{what} key: {err}"))
        peers: list[tuple[Node, list[IpNetwork]]] = []
        for name, node in sorted(cluster.nodes.items()):
            if name != self.node_name:
                cidrs = self._routable(node, problems)
                if cidrs:
                    peers.append((node, cidrs))
        # Phase 1: each pair's decision and, for IPsec, its keys.
        decisions: dict[str, enc.PairDecision] = {}
        ipsec_plans: dict[str, Any] = {}
        for node, _ in peers:
            peer_enc = enc.read(node)
            problems.extend(peer_enc.problems)
            key_problem = None
            if local_enc.kind == peer_enc.kind == enc.IPSEC:
                key_problem = self._ipsec_keys(me, node, now, ipsec_plans)
            elif local_enc.kind == peer_enc.kind == enc.WIREGUARD:
                key_problem = self._wireguard_check(me, node)
            decisions[node.name] = enc.decide(me, local_enc, node, peer_enc, key_problem)
        # SPI collisions. VPP finds an inbound tunnel SA by (peer address, SPI), so SPIs only have to
        # differ within one pair: a new generation against the generations still held. Both nodes
        # hold the same generations of their pair, so both reach the same verdict: keep the
        # previous keys (still encrypted) until the next epoch derives other SPIs.
        for p, plan in list(ipsec_plans.items()):
            if decisions[p].outcome != enc.IPSEC or len(plan.inbound) < 2:
                continue
            new, held = plan.inbound[0], plan.inbound[1:]
            clash = (inbound_collisions(self.node_name, {p: new.inbound.spi}, {k.inbound.spi for k in held})
                     or inbound_collisions(p, {self.node_name: new.outbound.spi}, {k.outbound.spi for k in held}))
            if clash:
                err = next(iter(clash.values()))
                state = self._rekey[p]
                state.generations = [g for g in state.generations if g.keys is not new]
                ipsec_plans[p] = state.plan(now)
                problems.append(Problem(cluster.nodes[p].key, "SpiCollision",
                                        f"{err}; keeping the previous IPsec keys until the next key epoch"))
        # Pairs no longer on IPsec start afresh next time (their first generation is used at once).
        for p in [p for p in self._rekey if decisions.get(p, enc.PairDecision(enc.CLEAR)).outcome != enc.IPSEC]:
            del self._rekey[p]
        # Phase 2: intents.
        wg_needed = False
        self.pairs = {}
        for node, cidrs in peers:
            d = decisions[node.name]
            self.pairs[node.name] = d.outcome
            if d.problem is not None:
                problems.append(d.problem)
            out = self._intents(me, node, cidrs, d.outcome, ipsec_plans.get(node.name), problems)
            wg_needed |= d.outcome == enc.WIREGUARD
            intents.extend(out)
        if wg_needed:
            intents.append(Intent(WG_KIND, self._wg_interface(me), me.key))
        if self._gauge is not None:
            for outcome in enc.OUTCOMES:
                self._gauge.labels(outcome).set(sum(1 for o in self.pairs.values() if o == outcome))
        return intents, problems

    # -- per peer ----------------------------------------------------------------------------

    def _routable(self, node: Node, problems: list[Problem]) -> list[IpNetwork]:
        cidrs_text = ", ".join(map(str, self.cluster_cidrs)) or "none"
        out = []
        for cidr in node.pod_cidrs:
            if not self._in_cluster(cidr):
                problems.append(Problem(node.key, "PodCIDROutsideClusterCIDRs",
                                        f"pod CIDR {cidr} is outside the cluster CIDRs ({cidrs_text}); "
                                        "no route programmed"))
            elif cidr.prefixlen == cidr.max_prefixlen or self._overlaps_own(cidr):
                problems.append(Problem(node.key, "PodCIDROverlap",
                                        f"pod CIDR {cidr} overlaps this node's pod CIDRs or is a host "
                                        "route; no route programmed"))
            else:
                out.append(cidr)
        return out

    @staticmethod
    def _endpoints(me: Node, peer: Node) -> tuple[IpAddress, IpAddress] | None:
        """(local, peer) underlay addresses of one family, IPv4 first."""
        for version in (4, 6):
            a = next((ip for ip in me.internal_ips if ip.version == version), None)
            b = next((ip for ip in peer.internal_ips if ip.version == version), None)
            if a is not None and b is not None:
                return a, b
        return None

    def _own_published(self, me: Node, annotation: str, key: NodeKey | None, what: str) -> str | None:
        if key is None:
            return f"this node's {what} key file is unusable"
        if me.annotations.get(annotation, "").strip() != key.annotation:
            return f"this node's {what} public key is not published yet ({annotation})"
        return None

    def _ipsec_keys(self, me: Node, peer: Node, now: float, plans: dict[str, Any]) -> str | None:
        assert self._keys is not None and self.settings is not None
        why = self._own_published(me, IPSEC_PUBLIC_KEY, self._keys.ipsec, "IPsec")
        if why is not None:
            return why
        if self._endpoints(me, peer) is None:
            return "no InternalIP of a common family"
        try:
            peer_pub = decode_public(peer.annotations.get(IPSEC_PUBLIC_KEY), node=peer.name,
                                     annotation=IPSEC_PUBLIC_KEY)
            mine = parse_epoch(me.annotations.get(IPSEC_KEY_EPOCH), node=me.name)
            theirs = parse_epoch(peer.annotations.get(IPSEC_KEY_EPOCH), node=peer.name)
            a, _ = canonical(me.name, peer.name)
            epoch = PairEpoch(mine, theirs) if a == me.name else PairEpoch(theirs, mine)
            keys = derive_pair(me.name, self._keys.ipsec, peer.name, peer_pub, epoch)
        except (KeyNegotiationError, ValueError) as e:
            return str(e)
        state = self._rekey.setdefault(peer.name, PairRekey(self.settings.timers))
        if state.observe(keys, now):
            log.info("IPsec key generation for a peer", extra={
                "peer": peer.name, "epoch": f"{epoch.a}/{epoch.b}", "spi_out": keys.outbound.spi,
                "spi_in": keys.inbound.spi, "rekey": len(state.generations) > 1})
        plans[peer.name] = state.plan(now)
        return None

    def _wireguard_check(self, me: Node, peer: Node) -> str | None:
        assert self._keys is not None
        why = self._own_published(me, WIREGUARD_PUBLIC_KEY, self._keys.wireguard, "WireGuard")
        if why is not None:
            return why
        if self._endpoints(me, peer) is None:
            return "no InternalIP of a common family"
        try:
            decode_public(peer.annotations.get(WIREGUARD_PUBLIC_KEY), node=peer.name,
                          annotation=WIREGUARD_PUBLIC_KEY)
        except KeyNegotiationError as e:
            return str(e)
        return None

    def _wg_interface(self, me: Node) -> WgInterface:
        assert self._keys is not None and self._keys.wireguard is not None and self.settings is not None
        src = next(iter(sorted(me.internal_ips, key=lambda ip: ip.version)))
        k = self._keys.wireguard
        return WgInterface(WG_NAME, self.settings.wireguard_port, src, k.public, k.private, self.table_id,
                           self.unnumbered)

    def _intents(self, me: Node, peer: Node, cidrs: list[IpNetwork], outcome: str, plan: Any,
                 problems: list[Problem]) -> list[Intent]:
        origin = peer.key
        if outcome == enc.BLOCKED:
            return [Intent(ROUTE_KIND, drop_route(c, self.table_id), origin) for c in cidrs]
        if outcome == enc.WIREGUARD:
            assert self.settings is not None
            _, remote = self._endpoints(me, peer)
            wg_key = Key(WG_KIND, WG_NAME)
            pub = decode_public(peer.annotations.get(WIREGUARD_PUBLIC_KEY), node=peer.name,
                                annotation=WIREGUARD_PUBLIC_KEY)
            out = [Intent(WG_PEER_KIND, WgPeer(wg_key, pub, remote, self.settings.wireguard_port, tuple(cidrs),
                                               self.settings.keepalive_s), origin)]
            # VPP picks the peer of a wg adjacency by its next hop, which must be in the peer's
            # allowed IPs: the pod CIDR's own first address is.
            out += [Intent(ROUTE_KIND, OwnedRoute(c, (Hop(next_hop=c.network_address, via=wg_key),),
                                                  self.table_id), origin) for c in cidrs]
            return out
        flavour = "ipsec" if outcome == enc.IPSEC else self.mode
        if flavour == "flat":
            out = []
            for c in cidrs:
                via = next((ip for ip in peer.internal_ips if ip.version == c.version), None)
                if via is None:
                    problems.append(Problem(origin, "NoInternalIP",
                                            f"no IPv{c.version} InternalIP to reach pod CIDR {c}; "
                                            "no route programmed"))
                    continue
                out.append(Intent(ROUTE_KIND, OwnedRoute(c, (Hop(next_hop=via),), self.table_id), origin))
            return out
        ends = self._endpoints(me, peer)
        if ends is None:
            problems.append(Problem(origin, "NoInternalIP", f"no InternalIP of a family {me.name} also has; "
                                                            "no tunnel programmed"))
            return []
        local, remote = ends
        tunnel = NodeTunnel(tunnel_name(peer.name), flavour, local, remote,
                            self.vni if flavour == "vxlan" else 0, self.table_id, self.unnumbered)
        out = [Intent(TUNNEL_KIND, tunnel, origin)]
        if flavour == "ipsec":
            def esp(d, inbound: bool) -> EspSa:
                return EspSa(d.spi, inbound, d.key, d.salt)
            out.append(Intent(IPSEC_KIND, IpsecProtection(
                tunnel.key, local, remote, esp(plan.outbound.outbound, False),
                tuple(esp(k.inbound, True) for k in plan.inbound)), origin))
        # An L3 VXLAN tunnel is not point to point for VPP: its routes need its static next hop.
        nh = VXLAN_NEXT_HOP if flavour == "vxlan" else None
        out += [Intent(ROUTE_KIND, OwnedRoute(c, (Hop(next_hop=nh, via=tunnel.key),), self.table_id), origin)
                for c in cidrs if nh is None or c.version == nh.version]
        return out

    # -- keys, publishing, time --------------------------------------------------------------

    def annotations(self) -> dict[str, str]:
        """What the agent must publish on this Node (public keys and key epoch); no secret.

        Empty until this node first asks for encryption (``desired`` then creates the keys); the
        agent publishes it after every ``desired`` in which it changed."""
        if self._keys is None or self._epochs is None:
            return {}
        out: dict[str, str] = {}
        if self._keys.ipsec is not None:
            out[IPSEC_PUBLIC_KEY] = self._keys.ipsec.annotation
            try:
                out[IPSEC_KEY_EPOCH] = str(self._epochs.load())
            except KeyNegotiationError as e:
                log.error("cannot read this node's key epoch", extra={"error": str(e)})
        if self._keys.wireguard is not None:
            out[WIREGUARD_PUBLIC_KEY] = self._keys.wireguard.annotation
        return out

    def rotate_if_due(self, max_sa_bytes: int = 0) -> bool:
        """Advance this node's key epoch if its lifetime is reached; True if the agent must
        republish ``annotations()`` (every IPsec pair of this node then rekeys)."""
        if self.settings is None or self._epochs is None or self._keys is None or self._keys.ipsec is None:
            return False  # no IPsec key yet: nothing to renew
        now = self._clock()
        if not self.settings.lifetime.expired(now - self._epoch_started, max_sa_bytes):
            return False
        epoch = self._epochs.advance()
        self._epoch_started = now
        log.info("advanced this node's IPsec key epoch", extra={"epoch": epoch, "max_sa_bytes": max_sa_bytes})
        return True

    def next_change(self) -> float | None:
        """When (clock time) ``desired`` would give another answer with the same cluster state."""
        now = self._clock()
        times = [t for t in (r.next_change(now) for r in self._rekey.values()) if t is not None]
        return min(times) if times else None
