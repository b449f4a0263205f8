"""JSON-ready snapshots of a running agent: status, pods, services, policies, peers, encryption.

Owns: what the status socket and the operator CLI show, and the small
protocol through which features add their own rows: a feature may define
``ops_status() -> dict[str, list[dict]]`` mapping topic names ("policies",
"peers", "encryption", ...) to rows; those rows replace the built-in view of
that topic. (``status`` is not used as the method name: the pods feature's
``status()`` is the CNI STATUS command.)

Reads happen on the status server's threads while the agent's reconciler
thread writes: dictionaries are copied with a retry (a copy can race a
resize), never iterated in place.

Must not touch: VPP, Kubernetes, the agent's queue.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

TOPICS = ("pods", "services", "policies", "peers", "encryption")
ENCRYPTION_ANNOTATION = "vppagent.io/encryption"
ENCRYPTION_MODES = ("none", "ipsec", "wireguard")
POD_KIND = "pod-interface"  # vppagent.cni.pod_interface_kind.KIND; not imported so views load without grpc

T = TypeVar("T")


def snapshot(read: Callable[[], T], attempts: int = 5) -> T:
    """``read()`` retried when another thread resized what it iterates."""
    for i in range(attempts):
        try:
            return read()
        except RuntimeError:
            if i == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _items(d: Mapping[Any, T]) -> list[tuple[Any, T]]:
    return snapshot(lambda: list(d.items()))


@dataclass(frozen=True)
class PodRef:
    """Which pod a VPP interface belongs to (metric labels and the ``pods`` view)."""

    namespace: str
    pod: str
    ifname: str


def requested_encryption(annotations: Mapping[str, str] | None) -> str:
    value = (annotations or {}).get(ENCRYPTION_ANNOTATION, "none").strip().lower()
    return value if value in ENCRYPTION_MODES else f"invalid:{value}"


class AgentView:
    """Reads one ``Agent`` (duck-typed: cfg, health, vpp, reconciler, cluster, features, stats)."""

    def __init__(self, agent: Any):
        self.agent = agent

    # -- pods ------------------------------------------------------------------------------

    def pod_interfaces(self) -> dict[int, PodRef]:
        """sw_if_index -> pod, from the pod network's attachments and the reconciler's handles."""
        pods = getattr(self.agent, "pod_network", None)
        if pods is None:
            return {}
        applied = _items(self.agent.reconciler.applied.objects)
        handle = {key.id: a.handle for key, a in applied if key.kind == POD_KIND}
        out: dict[int, PodRef] = {}
        for att in pods.attachments():
            idx = handle.get(f"{att.container_id[:32]}/{att.ifname}")
            if isinstance(idx, int):
                out[idx] = PodRef(att.pod_namespace, att.pod_name, att.ifname)
        return out

    def pods(self) -> list[dict[str, Any]]:
        pods = getattr(self.agent, "pod_network", None)
        if pods is None:
            return []
        applied = dict(_items(self.agent.reconciler.applied.objects))
        failures = dict(_items(self.agent.reconciler.failures))
        by_name = {key.id: (key, a) for key, a in applied.items() if key.kind == POD_KIND}
        failed = {key.id: f for key, f in failures.items() if key.kind == POD_KIND}
        rows = []
        for att in sorted(pods.attachments(), key=lambda a: (a.pod_namespace, a.pod_name, a.ifname)):
            name = f"{att.container_id[:32]}/{att.ifname}"
            hit = by_name.get(name)
            fail = failed.get(name)
            rows.append({
                "namespace": att.pod_namespace, "pod": att.pod_name, "ifname": att.ifname,
                "container": att.container_id[:12], "driver": att.driver.value,
                "ips": [ip for ip in att.ips], "host_ifname": att.host_ifname,
                "sw_if_index": hit[1].handle if hit else None,
                "state": "failed" if fail is not None else "programmed" if hit else "pending",
                "error": str(getattr(fail, "error", "") or "") if fail is not None else "",
            })
        return rows

    # -- cluster-derived views -------------------------------------------------------------

    def services(self) -> list[dict[str, Any]]:
        cluster = self.agent.cluster
        rows = []
        for key, svc in sorted(_items(cluster.services), key=lambda kv: (kv[0].namespace, kv[0].name)):
            ready = sum(1 for s in cluster.slices_of(key) for e in s.endpoints if e.ready)
            rows.append({
                "namespace": svc.namespace, "name": svc.name, "type": str(svc.type),
                "cluster_ips": [str(ip) for ip in svc.cluster_ips],
                "ports": [f"{p.port}/{p.protocol}" + (f":{p.node_port}" if p.node_port else "")
                          for p in svc.ports],
                "ready_endpoints": ready,
            })
        return rows

    def policies(self) -> list[dict[str, Any]]:
        rows = []
        for key, obj in _items(self.agent.cluster.others):
            if key.kind != "NetworkPolicy":
                continue
            rows.append({
                "namespace": key.namespace, "name": key.name,
                "types": sorted(str(t) for t in getattr(obj, "policy_types", ())),
                "ingress_rules": len(getattr(obj, "ingress", ())),
                "egress_rules": len(getattr(obj, "egress", ())),
            })
        return sorted(rows, key=lambda r: (r["namespace"], r["name"]))

    def _nodes(self) -> tuple[Any, list[Any]]:
        me = self.agent.cfg.node_name
        nodes = [n for _, n in _items(self.agent.cluster.nodes)]
        return next((n for n in nodes if n.name == me), None), sorted(
            (n for n in nodes if n.name != me), key=lambda n: n.name)

    def peers(self) -> list[dict[str, Any]]:
        _, others = self._nodes()
        return [{"node": n.name, "internal_ips": [str(ip) for ip in n.internal_ips],
                 "pod_cidrs": [str(c) for c in n.pod_cidrs],
                 "encryption": requested_encryption(n.annotations)} for n in others]

    def encryption(self) -> list[dict[str, Any]]:
        """Per peer: what each side asks for and what applies (both must ask for the same kind)."""
        me, others = self._nodes()
        local = requested_encryption(me.annotations if me is not None else None)
        rows = []
        for n in others:
            remote = requested_encryption(n.annotations)
            effective = local if local == remote and local in ENCRYPTION_MODES else "none"
            rows.append({"peer": n.name, "local": local, "remote": remote, "effective": effective})
        return rows

    # -- topics --------------------------------------------------------------------------------

    def _feature_rows(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for f in self.agent.features:
            report = getattr(f, "ops_status", None)
            if report is None:
                continue
            try:
                got = report()
            except Exception as e:  # noqa: BLE001 - one feature's bug must not hide the others
                log.warning("feature status failed", extra={"feature": f.name, "error": str(e)})
                continue
            for topic, rows in (got or {}).items():
                if topic in TOPICS and isinstance(rows, list):
                    out[topic] = rows
        return out

    def show(self, topic: str) -> list[dict[str, Any]]:
        if topic not in TOPICS:
            raise KeyError(topic)
        rows = self._feature_rows().get(topic)
        if rows is not None:
            return rows
        return getattr(self, topic)()

    def counts(self) -> dict[str, int]:
        return {t: len(self.show(t)) for t in ("pods", "services", "policies", "peers")}

    def status(self) -> dict[str, Any]:
        a = self.agent
        live, live_why = a.health.live()
        ready, ready_why = a.health.ready()
        st = a.stats
        failures = sorted(_items(a.reconciler.failures), key=lambda kv: str(kv[0]))
        me, _ = self._nodes()
        return {
            "node": a.cfg.node_name,
            "live": live, "live_reason": live_why,
            "ready": ready, "ready_reason": ready_why,
            "vpp": {"socket": a.cfg.vpp_socket, "connected": bool(a.vpp.connected),
                    "vpe_pid": getattr(a.vpp, "vpe_pid", 0),
                    "api_calls": sum(snapshot(lambda: dict(a.vpp.calls)).values())},
            "reconcile": {"passes": st.passes, "resyncs": st.resyncs, "first_sync_s": st.first_sync_s,
                          "desired": st.desired, "applied": len(a.reconciler.applied), "failed": st.failed},
            "features": [f.name for f in a.features],
            "encryption": requested_encryption(me.annotations if me is not None else None),
            "counts": self.counts(),
            "failures": [{"object": f"{k.kind}/{k.id}", "op": getattr(f, "op", ""),
                          "error": str(getattr(f, "error", f))} for k, f in failures[:20]],
        }

