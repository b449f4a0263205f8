"""Prometheus metrics of the agent and of VPP's stats segment.

Owns three things registered on the agent's registry (served at /metrics):

- ``ReconcileMetrics``: how long reconcile passes take and what fails, by
  wrapping the reconciler's ``converge`` (so the agent's loop needs no
  change);
- ``AgentCollector``: at scrape time, VPP API calls (and errors, when the
  client counts them) by message, whether VPP is connected, and the counts of
  pods, services, policies and peers (from ``views.AgentView``);
- ``VppStatsCollector``: at scrape time, from the stats segment: per
  interface rx/tx packets and bytes and drops, labelled with the pod and
  namespace of pod interfaces; error counters by graph node and error;
- ``PolicyCountersCollector``: at scrape time, the per-rule counters of our
  policy plugin (``kpol_counters_dump``: counts[0] default-deny drops,
  counts[1 + i] packets rule i allowed), when VPP has the plugin loaded.

Interface and error counters come from shared memory (no API call); the
policy counters are one dump on the agent's API connection per scrape, and
only when the plugin's messages exist. Names follow
Prometheus conventions: ``vppagent_`` prefix, ``_total`` for counters,
base units (seconds, bytes).

Must not touch: VPP's API, Kubernetes, the reconciler's state (read only).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from vppagent.iptypes import U32_NONE

from .views import AgentView, PodRef, snapshot

log = logging.getLogger(__name__)

RECONCILE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
POLICY_COUNTERS_DUMP = "kpol_counters_dump"
_ALL_POLICIES = U32_NONE
_DIRECTIONS = {0: "ingress", 1: "egress"}  # kp_dir_t


# -- reconcile passes ----------------------------------------------------------------------------


class ReconcileMetrics:
    """Durations and failures of reconcile passes."""

    def __init__(self, registry: Any):
        self.duration = Histogram("vppagent_reconcile_duration_seconds",
                                  "wall time of one reconcile pass (read-back included)",
                                  buckets=RECONCILE_BUCKETS, registry=registry)
        self.failed_ops = Counter("vppagent_reconcile_failed_operations_total",
                                  "VPP object operations that failed (retried with backoff)", registry=registry)
        self.aborted = Counter("vppagent_reconcile_aborted_passes_total",
                               "reconcile passes aborted before the end", ["reason"], registry=registry)

    def observe(self, seconds: float, failed: int = 0) -> None:
        self.duration.observe(seconds)
        if failed:
            self.failed_ops.inc(failed)

    def instrument(self, reconciler: Any) -> None:
        """Time every ``converge`` of ``reconciler`` (wrapped in place: the loop keeps calling it)."""
        from vppagent.reconcile import ReconcileError, VppUnavailable

        inner = reconciler.converge
        if getattr(inner, "_vppagent_instrumented", False):
            return

        def converge() -> Any:
            t0 = time.perf_counter()
            try:
                result = inner()
            except VppUnavailable:
                self.aborted.labels("vpp_unavailable").inc()
                raise
            except ReconcileError:
                self.aborted.labels("error").inc()
                raise
            self.observe(time.perf_counter() - t0, getattr(result, "failed", 0))
            return result

        converge._vppagent_instrumented = True  # type: ignore[attr-defined]
        reconciler.converge = converge


# -- agent-level series ----------------------------------------------------------------------------


class AgentCollector(Collector):
    """Series read from the agent at scrape time."""

    def __init__(self, view: AgentView):
        self.view = view

    def collect(self) -> Iterable[Any]:
        agent = self.view.agent
        vpp = agent.vpp
        calls = CounterMetricFamily("vppagent_vpp_api_calls", "VPP binary API requests sent, by message",
                                    labels=["message"])
        for name, n in sorted(snapshot(lambda: dict(vpp.calls)).items()):
            calls.add_metric([name], n)
        yield calls
        errors = getattr(vpp, "errors", None)
        if errors is not None:
            fam = CounterMetricFamily("vppagent_vpp_api_errors",
                                      "VPP binary API requests that failed (retval or timeout), by message",
                                      labels=["message"])
            for name, n in sorted(snapshot(lambda: dict(errors)).items()):
                fam.add_metric([name], n)
            yield fam
        yield GaugeMetricFamily("vppagent_vpp_connected", "1 while the agent is connected to VPP's API",
                                value=1 if vpp.connected else 0)
        yield GaugeMetricFamily("vppagent_ready", "1 while /readyz answers 200",
                                value=1 if agent.health.ready()[0] else 0)
        counts = self.view.counts()
        for topic, help_ in (("pods", "pod interfaces attached on this node"),
                             ("services", "Services in the cluster"),
                             ("policies", "NetworkPolicies in the cluster"),
                             ("peers", "other nodes this node routes to")):
            yield GaugeMetricFamily(f"vppagent_{topic}", help_, value=counts.get(topic, 0))
        yield GaugeMetricFamily("vppagent_applied_objects", "objects the agent holds in VPP",
                                value=len(agent.reconciler.applied))


# -- VPP stats segment -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatsSample:
    """One read of the stats segment (``vppagent.vpp.stats`` shapes)."""

    interfaces: list[Any]                                   # InterfaceCounters
    errors: Mapping[str, int]                               # '/err/<node>/<error>' -> count


class StatsSource:
    """Reads samples from VPP's stats socket; connects lazily and again after a failure."""

    def __init__(self, socket_path: str):
        self.socket_path = socket_path
        self._reader: Any = None
        self._lock = threading.Lock()  # one scrape at a time reads the mapping

    def _open(self) -> Any:
        from vppagent.vpp.stats import StatsReader  # vpp_papi's stats client, only when used

        return StatsReader(self.socket_path).connect()

    def sample(self) -> StatsSample:
        with self._lock:
            if self._reader is None:
                self._reader = self._open()
            try:
                ifs = self._reader.interface_counters()
                errs = self._reader.error_counters()
            except Exception:
                self._close_locked()
                raise
            return StatsSample(ifs, errs)

    def _close_locked(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.close()
            except Exception:  # noqa: BLE001 - closing a broken mapping
                pass

    def close(self) -> None:
        with self._lock:
            self._close_locked()


def split_error(name: str) -> tuple[str, str] | None:
    """'/err/ip4-input/ip4 ttl <= 1' -> ('ip4-input', 'ip4 ttl <= 1')."""
    if not name.startswith("/err/"):
        return None
    node, sep, error = name[len("/err/"):].partition("/")
    return (node, error) if sep and node and error else None


class VppStatsCollector(Collector):
    """Series read from VPP's stats segment at scrape time."""

    def __init__(self, sample: Callable[[], StatsSample], pods: Callable[[], Mapping[int, PodRef]] = dict):
        self._sample = sample
        self._pods = pods

    def collect(self) -> Iterable[Any]:
        up = GaugeMetricFamily("vppagent_vpp_stats_up", "1 if VPP's stats segment was read for this scrape")
        try:
            s = self._sample()
        except Exception as e:  # noqa: BLE001 - a scrape reports, never fails
            log.debug("stats segment not readable", extra={"error": str(e)})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from self._interfaces(s)
        yield from self._errors(s)

    def _interfaces(self, s: StatsSample) -> Iterable[Any]:
        pods = self._pods()
        labels = ["interface", "namespace", "pod"]
        fams = {
            "rx_packets": CounterMetricFamily("vppagent_vpp_interface_rx_packets",
                                              "packets received on a VPP interface", labels=labels),
            "rx_bytes": CounterMetricFamily("vppagent_vpp_interface_rx_bytes",
                                            "bytes received on a VPP interface", labels=labels),
            "tx_packets": CounterMetricFamily("vppagent_vpp_interface_tx_packets",
                                              "packets sent on a VPP interface", labels=labels),
            "tx_bytes": CounterMetricFamily("vppagent_vpp_interface_tx_bytes",
                                            "bytes sent on a VPP interface", labels=labels),
            "drops": CounterMetricFamily("vppagent_vpp_interface_drops",
                                         "packets dropped on a VPP interface", labels=labels),
        }
        for c in s.interfaces:
            ref = pods.get(c.sw_if_index)
            values = [c.name, ref.namespace if ref else "", ref.pod if ref else ""]
            for attr, fam in fams.items():
                fam.add_metric(values, getattr(c, attr))
        yield from fams.values()

    def _errors(self, s: StatsSample) -> Iterable[Any]:
        fam = CounterMetricFamily("vppagent_vpp_node_errors",
                                  "VPP error counters (drops and other events) by graph node and error",
                                  labels=["node", "error"])
        for name, n in sorted(s.errors.items()):
            parts = split_error(name)
            if parts is not None:
                fam.add_metric(list(parts), n)
        yield fam


# -- the policy plugin's rule counters ---------------------------------------------------------------

PolicyCounts = Mapping[tuple[int, str], Sequence[int]]  # (policy id, direction) -> counts


def read_policy_counters(vpp: Any) -> dict[tuple[int, str], list[int]]:
    """Every policy's counters from the kpol plugin; {} when VPP is not connected or has no kpol."""
    if not vpp.connected or not vpp.has_message(POLICY_COUNTERS_DUMP):
        return {}
    out: dict[tuple[int, str], list[int]] = {}
    for d in vpp.dump(POLICY_COUNTERS_DUMP, policy_id=_ALL_POLICIES):
        out[(int(d.policy_id), _DIRECTIONS.get(int(d.dir), str(d.dir)))] = [int(c) for c in d.counts]
    return out


class PolicyCountersCollector(Collector):
    """Per-rule and default-deny packet counters of the policy plugin, labelled with the policy."""

    def __init__(self, read: Callable[[], PolicyCounts], names: Callable[[], Mapping[str, str]] = dict):
        self._read = read
        self._names = names

    def collect(self) -> Iterable[Any]:
        try:
            counts = self._read()
        except Exception as e:  # noqa: BLE001 - a scrape reports, never fails
            log.debug("policy counters not readable", extra={"error": str(e)})
            return
        if not counts:
            return  # no plugin, or no isolating policy: no series at all
        names = self._names()
        rules = CounterMetricFamily("vppagent_policy_rule_packets",
                                    "packets allowed by one rule of a network policy (policy plugin)",
                                    labels=["policy_id", "policy", "direction", "rule"])
        deny = CounterMetricFamily("vppagent_policy_default_deny_packets",
                                   "packets dropped by a policy's default deny (policy plugin)",
                                   labels=["policy_id", "policy", "direction"])
        for (pid, direction), values in sorted(counts.items()):
            if not values:
                continue
            policy = names.get(str(pid), "")
            deny.add_metric([str(pid), policy, direction], values[0])
            for i, n in enumerate(values[1:]):
                rules.add_metric([str(pid), policy, direction, str(i)], n)
        yield rules
        yield deny


# -- wiring --------------------------------------------------------------------------------------------


@dataclass
class OpsMetrics:
    """Everything this module registers for one agent."""

    reconcile: ReconcileMetrics
    agent: AgentCollector
    stats: VppStatsCollector
    policy: PolicyCountersCollector
    source: StatsSource | None


def register(registry: Any, agent: Any, *, stats_socket: str | None) -> OpsMetrics:
    """Register the agent's and (if ``stats_socket``) VPP's series on ``registry``."""
    view = AgentView(agent)
    rec = ReconcileMetrics(registry)
    rec.instrument(agent.reconciler)
    coll = AgentCollector(view)
    registry.register(coll)
    source = StatsSource(stats_socket) if stats_socket else None
    stats = VppStatsCollector(source.sample if source else _no_stats, view.pod_interfaces)
    if source is not None:
        registry.register(stats)
    policy = PolicyCountersCollector(lambda: read_policy_counters(agent.vpp), _policy_names_of(agent))
    registry.register(policy)
    return OpsMetrics(rec, coll, stats, policy, source)


def _no_stats() -> StatsSample:
    raise RuntimeError("no stats socket configured")


def _policy_names_of(agent: Any) -> Callable[[], Mapping[str, str]]:
    """A feature may define ``policy_names() -> {plugin policy id: 'namespace/name'}``."""
    def names() -> Mapping[str, str]:
        for f in agent.features:
            fn = getattr(f, "policy_names", None)
            if fn is not None:
                return {str(k): v for k, v in fn().items()}
        return {}
    return names
