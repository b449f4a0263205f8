"""``vppagent run``: sources -> cluster state -> features -> reconciler -> VPP.

Owns: the agent's run loop (the ONE reconciler thread), which features a
configuration enables (``vppagent.feature.Feature`` says what each offers),
the wiring of sources, the cluster state (``vppagent.model.cluster_state``),
the VPP client, the reconciler, health and Events.

The loop (threads and one queue, as in the README): sources and the VPP
client's connection events only ``put`` on the queue; this thread drains
it, updates the cluster state, and when all sources have listed once and VPP
is connected it recomputes the desired state (only if something changed),
and runs a reconcile pass when the desired state changed, a failed object
is due for retry, or VPP must be read back (at start, after a VPP restart,
and every ``resync_interval_s`` if set). Nothing is deleted before every
source has listed: an API server that is down at start, or goes down later,
leaves the data plane as it is (the sources keep their last lists).

Problems a feature reports (an input it refuses, e.g. a ClusterIP outside
the service CIDRs) and objects VPP refuses are logged and posted as
Kubernetes Events on the object concerned, once per distinct problem.

Stopping (SIGTERM) ends the loop and closes connections without deleting
anything: the data plane keeps forwarding while the agent is away, and the
next agent adopts what it finds.

Must not touch: VPP other than through the reconciler (plus the client's
connect/close); the sources' internals.
"""
from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vppagent.config import Config, safe_pod_mtu, key_dir
from vppagent.crash import NONE as NO_CRASH, CrashPoints
from vppagent.connectivity import EncryptionSettings, NodeConnectivity
from vppagent.health import Health
from vppagent.feature import Feature
from vppagent.model.cluster_state import ClusterState
from vppagent.model.k8s import ObjectKey
from vppagent.reconcile import (
    Delta,
    Intent,
    Key,
    ObjectFailed,
    Problem,
    Reconciler,
    ReconcileError,
    RetryPolicy,
    VppUnavailable,
)
from vppagent.services import ServiceTranslations
from vppagent.sources import (
    ENDPOINT_SLICES,
    NAMESPACES,
    NETWORK_POLICIES,
    NODES,
    PODS,
    SERVICES,
    BackoffPolicy,
    Delete,
    EventRecorder,
    KindSpec,
    ObjectRef,
    SourceGroup,
    SourceOptions,
    Synced,
    Upsert,
)
from vppagent.vpp import (acl, af_packet, catalog, cnat, features, interfaces, ipsec, memif, neighbors, routes, tap,
                          tunnels, wireguard)
from vppagent.vpp.api_defs import load_definitions
from vppagent.vpp.client import Connected, Disconnected, VppClient
from vppagent.vpp.crcs import PINNED_CRCS
from vppagent.vpp.errors import ApiDefinitionsError, IncompatibleVppError, VppError

log = logging.getLogger(__name__)

_KIND_SPECS: Mapping[str, KindSpec] = {"Node": NODES, "Service": SERVICES, "EndpointSlice": ENDPOINT_SLICES,
                                       "Pod": PODS, "Namespace": NAMESPACES, "NetworkPolicy": NETWORK_POLICIES}
_API_VERSIONS = {"Node": "v1", "Service": "v1", "Namespace": "v1", "Pod": "v1",
                 "EndpointSlice": "discovery.k8s.io/v1", "NetworkPolicy": "networking.k8s.io/v1"}
# The VPP message families the enabled features use (checked at connect).
# kpol (our plugin) is deliberately not here: stock VPP lacks it, and the
# policies feature then falls back to the ACL plugin (kpol.available()).
_FAMILIES = (interfaces, routes, cnat, neighbors, af_packet, tap, memif, tunnels, ipsec, wireguard, acl, features)
_IDLE_BEAT_S = 1.0  # the loop wakes at least this often, to beat /healthz
_DRAIN_MAX = 20000  # events handled before looking at the reconciler again


class FatalAgentError(Exception):
    """The agent cannot run with this VPP or these definitions; retrying will not help."""


class _Stop:
    """Queue sentinel: the loop should end."""


@dataclass(frozen=True)
class FeatureChanged:
    """Queue event: a feature's own inputs changed (a CNI call).

    With a ``feature`` name, only that feature and the features that follow it
    (``follows``) are recomputed, and only the keys whose intents changed reach
    the reconciler: a pod ADD on a node with 10,000 services must not
    recompute the services. Without one, everything is recomputed.
    """

    feature: str = ""


# -- features -----------------------------------------------------------------------


def features_for(cfg: Config, *, submit: Any = None, registry: Any = None,
                 crash: CrashPoints = NO_CRASH) -> list[Feature]:
    """The features ``cfg`` enables. ``submit()`` wakes the agent loop (features with inputs of
    their own, like CNI calls, need it). Building them reads nothing: ``start()`` does."""
    out: list[Feature] = []
    if cfg.pods:
        from vppagent.cni.pods import PodNetwork  # grpc and netlink only where pods are served

        out.append(PodNetwork(node_name=cfg.node_name, state_dir=Path(cfg.state_dir), table_id=cfg.pod_table_id,
                              mtu=cfg.pod_mtu or safe_pod_mtu(cfg), driver=cfg.pod_interface,
                              submit=submit or (lambda: None),
                              settle_timeout_s=max(5.0, 2 * cfg.vpp_timeout_s),
                              services=cfg.services, snat=cfg.service_snat, spares=cfg.pod_spare_interfaces,
                              af_packet_version=cfg.pod_af_packet_version,
                              rcu_expedited=cfg.kernel_rcu_expedited, offloads=cfg.pod_offloads,
                              crash=crash))
    if cfg.connectivity != "none":
        from ipsec import Lifetime, RekeyTimers
        from vppagent.cni.pod_interface_kind import GATEWAY_NAME
        from vppagent.kinds.loopback_kind import KIND as LOOPBACK_KIND

        settings = EncryptionSettings(
            key_dir(cfg), default=cfg.encryption_default, wireguard_port=cfg.wireguard_port,
            keepalive_s=cfg.wireguard_keepalive_s,
            timers=RekeyTimers(cfg.ipsec_rekey_switch_s, cfg.ipsec_rekey_overlap_s),
            lifetime=Lifetime(cfg.ipsec_key_lifetime_s, cfg.ipsec_key_lifetime_bytes))
        # Tunnels borrow the pod gateway loopback's address (IPv4 enabled for what they decapsulate).
        unnumbered = Key(LOOPBACK_KIND, GATEWAY_NAME) if cfg.pods else None
        out.append(NodeConnectivity(cfg.node_name, cfg.cluster_cidrs, mode=cfg.connectivity,
                                    table_id=cfg.pod_table_id, unnumbered=unnumbered, vni=cfg.vxlan_vni,
                                    encryption=settings, registry=registry))
    if cfg.services:
        out.append(ServiceTranslations.from_config(cfg))
    if cfg.policies:
        from vppagent.policy.feature import PolicyFeature

        pods = next((f for f in out if f.name == "pods"), None)
        out.append(PolicyFeature(cfg.node_name, pods))
    return out


def required_messages(client_defs: Any) -> dict[str, str]:
    """Every message the agent's families use, with its pinned CRC (else the definitions' own)."""
    names = list(catalog.PROTOCOL_MESSAGES)
    for fam in _FAMILIES:
        names.extend(fam.MESSAGES)
    out: dict[str, str] = {}
    for name in names:
        try:
            svc = client_defs.service(name)
        except (ApiDefinitionsError, KeyError):
            out[name] = PINNED_CRCS.get(name, "0x00000000")  # reported as missing at connect
            continue
        for m in (name, svc.reply, svc.details):
            if m:
                out[m] = PINNED_CRCS.get(m) or client_defs.crc(m)
    return out


# -- the agent ------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentStats:
    passes: int
    resyncs: int
    first_sync_s: float | None
    desired: int
    failed: int


class Agent:
    """One node agent. ``run()`` is the reconciler loop (call it on the thread that owns it)."""

    def __init__(self, cfg: Config, *, api_client: Any, vpp: VppClient | None = None,
                 recorder: EventRecorder | None = None, source_options: SourceOptions | None = None,
                 health: Health | None = None, features: list[Feature] | None = None,
                 connect_backoff: BackoffPolicy | None = None, registry: Any = None,
                 crash: CrashPoints = NO_CRASH):
        self.cfg = cfg
        self.queue: queue.Queue[Any] = queue.Queue()
        self.health = health or Health()
        self.cluster = ClusterState()
        self.features = features if features is not None else features_for(
            cfg, submit=lambda: self.queue.put(FeatureChanged("pods")), registry=registry, crash=crash)
        self.recorder = recorder
        if vpp is None:
            defs = load_definitions(cfg.api_dir)
            # Checked at every (re)connect: a VPP without cnat, or of another
            # release, is refused with the list of what differs.
            vpp = VppClient(cfg.vpp_socket, timeout=cfg.vpp_timeout_s, auto_reconnect=True,
                            definitions=defs, required=required_messages(defs), crash=crash)
        self.vpp = vpp
        self.vpp.subscribe(self.queue.put)
        for f in self.features:
            f.bind_vpp(self.vpp)
        self.reconciler = Reconciler(self.vpp, retry=RetryPolicy(cfg.retry_initial_s, cfg.retry_max_s),
                                     chunk=cfg.bulk_chunk, on_failure=self._on_object_failed)
        for f in self.features:
            for d in f.descriptors():
                self.reconciler.register(d)
        kinds = sorted({k for f in self.features for k in f.watches})
        opts = source_options or SourceOptions(watch_timeout_s=cfg.watch_timeout_s)
        # Only policy needs every pod of the cluster; pod networking needs this node's.
        all_pods = any("Pod" in f.watches and f.needs_all_pods for f in self.features)
        self.sources = SourceGroup.for_node(api_client, self.queue, node_name=cfg.node_name,
                                            local_pods_only=not all_pods,
                                            recorder=recorder, options=opts,
                                            kinds=[_KIND_SPECS[k] for k in kinds])
        self._cni_server: Any = None
        self._pending_sync = {s.name for s in self.sources.sources}
        self._stop = threading.Event()
        self._connect_backoff = connect_backoff or BackoffPolicy(initial_s=0.2, max_s=5.0)
        self._connect_failures = 0
        self._connect_at = 0.0
        self._dirty = True  # the cluster state changed since the desired state was computed
        self._touched: set[ObjectKey] = set()  # objects changed since the desired state was computed
        # The next recompute must be a full one: at start, and whenever something other than a
        # Kubernetes object made the state dirty (a CNI call, a key rotation, a timer).
        self._full_next = True
        self._problems: dict[str, list[Problem]] = {}  # per feature, its current problems
        self._intents: dict[str, dict[Key, Intent]] = {}  # per feature, its intents as last computed
        self._changed_features: set[str] = set()  # FeatureChanged names since the last recompute
        self._changed = True  # the desired state changed since the last pass
        self._reported: set[tuple[Any, str, str]] = set()
        self._first_sync_done = False
        self._started = time.monotonic()
        self._first_sync_s: float | None = None
        self._reconcile_at = 0.0  # earliest next pass after a VPP/resync error
        self._reconcile_failures = 0
        self._last_resync = 0.0
        self._passes = 0
        self._resyncs = 0
        self._rng = random.Random()
        self._metrics = _Metrics(registry) if registry is not None else None
        self._last_rotation_check = 0.0
        self._published: dict[str, str] = {}  # annotations handed to the Node patcher last

    # -- lifecycle ----------------------------------------------------------------

    def stop(self, *, from_signal: bool = False) -> None:
        """Ask the loop to end. From a signal handler pass ``from_signal``: the handler
        then only sets a flag (putting on the queue could deadlock on the queue's
        lock held by the interrupted main thread); the loop sees it within a second."""
        self._stop.set()
        if not from_signal:
            self.queue.put(_Stop())

    @property
    def ready(self) -> bool:
        return self.health.ready()[0]

    @property
    def pod_network(self) -> Any:
        """The ``pods`` feature, if enabled."""
        return next((f for f in self.features if f.name == "pods"), None)

    def _can_program(self) -> bool:
        """Whether a CNI call can expect its pod programmed now (read from CNI threads)."""
        return self._first_sync_done and self.vpp.connected

    @property
    def stats(self) -> AgentStats:
        return AgentStats(self._passes, self._resyncs, self._first_sync_s,
                          len(self.reconciler.desired), len(self.reconciler.failures))

    def run(self) -> None:
        """The reconciler loop; returns after ``stop()``. Raises FatalAgentError if VPP is unusable."""
        log.info("agent starting", extra={"node": self.cfg.node_name, "vpp_socket": self.cfg.vpp_socket,
                                          "features": ",".join(f.name for f in self.features)})
        try:
            for f in self.features:
                f.start()  # recovery from a crash, before any CNI call or desired state
            self.sources.start()
            self._start_cni_server()
            while not self._stop.is_set():
                self.health.beat()
                self._ensure_connected()
                for event in self._drain(self._wait_s()):
                    self._handle(event)
                if not self._stop.is_set():
                    self._maybe_reconcile()
                    self._settle()
                    self._update_readiness()
        finally:
            self.health.set_ready(False, "stopping")
            if self._cni_server is not None:
                self._cni_server.stop()
            self.sources.stop()
            for f in self.features:
                f.close()
            # Close without deleting anything: the data plane stays as programmed.
            self.vpp.close()
            log.info("agent stopped; VPP left as programmed",
                     extra={"applied": len(self.reconciler.applied)})

    def _start_cni_server(self) -> None:
        pods = self.pod_network
        if pods is None:
            return
        from vppagent.cni.backend import CniBackend
        from vppagent.cni.server import CniServer

        backend = CniBackend(pods, ready=self._can_program)
        self._cni_server = CniServer(self.cfg.cni_socket, backend, lambda key: self.reconciler.applied.get(key))
        self._cni_server.start()

    def _settle(self) -> None:
        """Tell features waiting for their objects (CNI calls) what the reconciler achieved."""
        for f in self.features:
            f.settle(self.reconciler.applied, self.reconciler.failures, self.vpp.connected)

    # -- events ---------------------------------------------------------------------

    def _wait_s(self) -> float:
        now = time.monotonic()
        wake = now + _IDLE_BEAT_S
        due = self.reconciler.next_retry_at()
        if due is not None:
            wake = min(wake, due)
        if self._reconcile_at > now:
            wake = min(wake, self._reconcile_at)
        if not self.vpp.connected and self._connect_at > now:
            wake = min(wake, self._connect_at)
        for at in self._feature_changes():
            wake = min(wake, at)
        return max(0.0, wake - now)

    def _feature_changes(self) -> list[float]:
        """When features whose desired state depends on time (the IPsec rekey schedule) change."""
        return [at for at in (f.next_change() for f in self.features) if at is not None]

    def _drain(self, timeout: float) -> list[Any]:
        try:
            out = [self.queue.get(timeout=timeout)] if timeout > 0 else [self.queue.get_nowait()]
        except queue.Empty:
            return []
        while len(out) < _DRAIN_MAX:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return out

    def _handle(self, event: Any) -> None:
        if isinstance(event, (Upsert, Delete)):
            self.cluster.apply(event)
            self._dirty = True
            self._touched.add(event.obj.key if isinstance(event, Upsert) else event.key)
        elif isinstance(event, Synced):
            self._pending_sync.discard(event.source)
            if not self._pending_sync:
                log.info("all sources listed", extra={"seconds": round(time.monotonic() - self._started, 3)})
        elif isinstance(event, Connected):
            self._dirty = self._full_next = True  # a (re)started VPP may offer other plugins (kpol or not)
            if event.reconnect:
                log.warning("VPP is back (it may have restarted); reading it back",
                            extra={"vpe_pid": event.vpe_pid})
                self.reconciler.needs_resync = True
                self._reconcile_at = 0.0
        elif isinstance(event, Disconnected):
            log.warning("VPP connection lost", extra={"reason": event.reason})
        elif isinstance(event, FeatureChanged):
            self._dirty = True
            if event.feature:
                self._changed_features.add(event.feature)
            else:
                self._full_next = True
        elif isinstance(event, _Stop):
            self._stop.set()

    # -- VPP connection -----------------------------------------------------------------

    def _ensure_connected(self) -> None:
        """The first connection (later ones are the client's auto-reconnect)."""
        if self.vpp.connected or self._connect_failures < 0:
            return
        now = time.monotonic()
        if now < self._connect_at:
            return
        try:
            self.vpp.connect()
            self._connect_failures = -1  # from now on the client reconnects by itself
            log.info("connected to VPP", extra={"vpe_pid": self.vpp.vpe_pid})
        except (IncompatibleVppError, ApiDefinitionsError) as e:
            raise FatalAgentError(str(e)) from e
        except VppError as e:
            self._connect_failures += 1
            delay = min(self._connect_backoff.max_s,
                        self._connect_backoff.initial_s * 2 ** min(self._connect_failures - 1, 16))
            self._connect_at = now + delay * (0.8 + 0.2 * self._rng.random())
            log.log(logging.WARNING if self._connect_failures in (1, 10) else logging.DEBUG,
                    "waiting for VPP", extra={"error": str(e), "attempts": self._connect_failures,
                                              "retry_in_s": round(delay, 2)})

    # -- reconciling ------------------------------------------------------------------------

    def _maybe_reconcile(self) -> None:
        if self._pending_sync or not self.vpp.connected:
            return  # never act on a partial view of the cluster, nor without VPP
        now = time.monotonic()
        if any(at <= now for at in self._feature_changes()):
            self._dirty = self._full_next = True
        self._rotate_keys(now)
        if self._dirty:
            self._recompute()
        if self.cfg.resync_interval_s and now - self._last_resync >= self.cfg.resync_interval_s \
                and self._first_sync_done:
            self.reconciler.needs_resync = True
        due = self.reconciler.next_retry_at()
        wanted = (self._changed or self.reconciler.needs_resync or not self._first_sync_done
                  or (due is not None and due <= now))
        if not wanted or now < self._reconcile_at:
            return
        resyncing = self.reconciler.needs_resync
        try:
            result = self.reconciler.converge()
        except VppUnavailable as e:
            self._reconcile_later(f"VPP unavailable: {e.cause}")
            return
        except ReconcileError as e:
            self._reconcile_later(str(e), error=True)
            return
        self._changed = False
        self._reconcile_failures = 0
        self._passes += 1
        if resyncing:
            self._resyncs += 1
            self._last_resync = now
        if self._metrics is not None:
            self._metrics.observe(self, result)
        if not self._first_sync_done:
            self._first_sync_done = True
            self._first_sync_s = time.monotonic() - self._started
            log.info("first sync done", extra={
                "seconds": round(self._first_sync_s, 3), "n_created": result.created,
                "n_updated": result.updated, "n_deleted": result.deleted, "n_failed": result.failed,
                "adopted": len(self.reconciler.applied) - result.created - result.updated,
                "calls": result.calls})

    def _rotate_keys(self, now: float) -> None:
        """Advance this node's key epoch when its lifetime is reached, and republish."""
        if now - self._last_rotation_check < 10.0:
            return
        self._last_rotation_check = now
        for f in self.features:
            # TODO(lead): pass the largest byte count of this node's SAs (stats segment, /net/ipsec/sa)
            # so that the bytes lifetime triggers too; the time lifetime works without it.
            if f.rotate_if_due():
                self._dirty = self._full_next = True  # the recompute republishes the new epoch

    def _publish_annotations(self) -> None:
        """Put what features publish (public keys, key epoch) on this Node; never secrets."""
        wanted: dict[str, str] = {}
        for f in self.features:
            wanted.update(f.annotations())
        if not wanted or wanted == self._published:
            return
        # The sources patch asynchronously (merge patch of metadata.annotations, retried with backoff):
        # the loop never waits for the API server.
        self.sources.patch_node_annotations(self.cfg.node_name, wanted)
        self._published = dict(wanted)

    def _reconcile_later(self, why: str, *, error: bool = False) -> None:
        self._reconcile_failures += 1
        delay = min(5.0, 0.1 * 2 ** min(self._reconcile_failures - 1, 10))
        self._reconcile_at = time.monotonic() + delay
        log.log(logging.ERROR if error else logging.WARNING, "reconcile pass aborted; retrying",
                extra={"error": why, "retry_in_s": delay})

    def _recompute(self) -> None:
        t0 = time.perf_counter()
        touched, self._touched = self._touched, set()
        changed, self._changed_features = self._changed_features, set()
        if not self._full_next and (touched or changed) and self._recompute_delta(touched, changed):
            self._dirty = False
            self._changed = True
            log.debug("desired state updated", extra={"touched": len(touched), "features": ",".join(sorted(changed)),
                                                      "seconds": round(time.perf_counter() - t0, 3)})
            return
        intents: list[Intent] = []
        self._problems = {}
        self._intents = {}
        for f in self.features:
            fi, fp = f.desired(self.cluster)
            intents.extend(fi)
            self._problems[f.name] = fp
            self._intents[f.name] = {self.reconciler.key_of(i): i for i in fi}
        self.reconciler.set_desired(intents)
        self._report(p for fp in self._problems.values() for p in fp)
        # Features may have made keys while computing (a node that just asked for encryption).
        self._publish_annotations()
        self._dirty = False
        self._changed = True
        self._full_next = False
        log.debug("desired state computed", extra={"objects": len(intents),
                                                   "problems": sum(map(len, self._problems.values())),
                                                   "seconds": round(time.perf_counter() - t0, 3)})

    def _recompute_delta(self, touched: set[ObjectKey], changed: set[str]) -> bool:
        """The incremental path; False: the caller takes the full path.

        Features whose own inputs changed (``changed``), the features that
        follow them, and features watching a touched kind that offer no
        ``desired_delta`` are recomputed alone and diffed against their last
        intents; the others watching a touched kind give their delta.
        """
        kinds = {k.kind for k in touched}
        rerun = {f.name for f in self.features
                 if f.name in changed or set(f.follows) & changed
                 or (kinds & set(f.watches) and not f.incremental)}
        if any(name not in self._intents for name in rerun):
            return False
        deltas: list[tuple[Any, Any]] = []
        for f in self.features:
            if f.name not in rerun and kinds & set(f.watches):
                delta = f.desired_delta(self.cluster, touched)
                if delta is None:
                    return False  # what an earlier feature computed is recomputed by the full path
                deltas.append((f, delta))
        for f in self.features:
            if f.name in rerun:
                fi, fp = f.desired(self.cluster)
                deltas.append((f, self._feature_delta(f.name, fi, fp)))
        for f, delta in deltas:
            self.reconciler.update_desired(delta.removed, delta.added)
            self._problems[f.name] = delta.problems
            mine = self._intents[f.name]
            for i in delta.removed:
                mine.pop(self.reconciler.key_of(i), None)
            for i in delta.added:
                mine[self.reconciler.key_of(i)] = i
        self._report(p for fp in self._problems.values() for p in fp)
        if rerun:
            self._publish_annotations()
        return True

    def _feature_delta(self, name: str, intents: list[Intent], problems: list[Problem]) -> Delta:
        """What changed between a feature's last intents and ``intents``."""
        old = self._intents[name]
        new = {self.reconciler.key_of(i): i for i in intents}
        removed = [i for k, i in old.items() if new.get(k) != i]
        added = [i for k, i in new.items() if old.get(k) != i]
        return Delta(removed, added, problems)

    def _report(self, problems: Iterable[Problem]) -> None:
        current = {(p.origin, p.reason, p.message) for p in problems}
        for origin, reason, message in sorted(current - self._reported, key=str):
            log.warning("skipping input: %s", message, extra={"object": str(origin), "reason": reason})
            self._event(origin, reason, message)
        self._reported = current

    def _on_object_failed(self, key: Key, origin: Any, err: ObjectFailed) -> None:
        self._event(origin, "VppProgrammingFailed",
                    f"VPP refused {err.op} of {key}: {err.cause}" + ("" if err.retriable else " (not retried)"))

    def _event(self, origin: Any, reason: str, message: str) -> None:
        if self.recorder is None or not isinstance(origin, ObjectKey):
            return
        obj = self.cluster.get(origin)
        uid = obj.uid if obj is not None else ""
        ref = ObjectRef(kind=origin.kind, name=origin.name, namespace=origin.namespace, uid=uid,
                        api_version=_API_VERSIONS.get(origin.kind, "v1"))
        self.recorder.record(ref, reason, message)

    def _update_readiness(self) -> None:
        if self._pending_sync:
            self.health.set_ready(False, f"waiting for the first list of {', '.join(sorted(self._pending_sync))}")
        elif not self.vpp.connected:
            self.health.set_ready(False, "VPP not connected")
        elif not self._first_sync_done:
            self.health.set_ready(False, "first reconcile pass not applied yet")
        else:
            self.health.set_ready(True, "ready")


class _Metrics:
    """A few Prometheus series about reconciling (registry is the agent's own)."""

    def __init__(self, registry: Any):
        from prometheus_client import Counter, Gauge

        self.passes = Counter("vppagent_reconcile_passes", "reconcile passes applied", registry=registry)
        self.ops = Counter("vppagent_reconcile_operations", "VPP object operations applied", ["op"],
                           registry=registry)
        self.failed = Gauge("vppagent_reconcile_failed_objects", "objects whose last operation failed",
                            registry=registry)
        self.desired = Gauge("vppagent_desired_objects", "objects the agent wants in VPP", registry=registry)

    def observe(self, agent: Agent, result: Any) -> None:
        self.passes.inc()
        self.ops.labels("create").inc(result.created)
        self.ops.labels("update").inc(result.updated)
        self.ops.labels("delete").inc(result.deleted)
        self.failed.set(len(agent.reconciler.failures))
        self.desired.set(len(agent.reconciler.desired))


__all__ = ["Agent", "AgentStats", "ClusterState", "FatalAgentError", "Feature", "FeatureChanged", "features_for",
           "required_messages"]
