"""Reconciler at scale: cold start, agent restart, VPP restart.

    python -m perf.reconcile_scale [--pods 1000] [--services 5000] [--ports 2] [--endpoints 5]
                                   [--nodes 100] [--out perf/results]

The workload is a cluster as the agent's features see it, fed directly to
the real features and reconciler (no fake API server: model objects are
built in memory, which is what the sources would deliver; the sources are
measured by their own tests):

- ``--services`` ClusterIP services with ``--ports`` ports each (TCP 80,
  UDP 53, ...) and ``--endpoints`` ready endpoints: one cnat translation per
  (service, port) through ``ServiceTranslations``;
- ``--nodes`` nodes: a route to each other node's pod CIDR through
  ``NodeConnectivity`` (flat mode);
- ``--pods`` pods on this node. Without CNI the core cannot create pod
  interfaces, so each pod is represented by what its attachment will
  program: a /32 route to the pod IP through one tagged loopback
  (``vppagent:lo:pods``) standing in for the pod interfaces. This exercises
  dependencies (routes need the loopback's sw_if_index) and the interface
  tag scheme.

Phases, each in a fresh child process so that its peak RSS is its own:

1. cold start: empty VPP, read back (nothing), program everything;
2. agent restart: a new agent reads VPP back and adopts everything
   (target: zero mutating calls, under 5 s);
3. VPP restart: VPP restarts empty under a running agent; the time from
   the client's reconnect to everything re-programmed.

Backends: the emulator (a test double, as a separate process) always, and a
real VPP 26.06 when ``VPPAGENT_VPP_BIN`` is set (started privately with
startup/vpp_process.py). Prints a table; writes ``reconcile_scale.json``.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from startup.vpp_process import VppProcess  # noqa: E402
from testbed.emulator.process import start_emulator_process  # noqa: E402
from vppagent.connectivity.feature import NodeConnectivity  # noqa: E402
from vppagent.model import Endpoint, EndpointPort, EndpointSlice, Node, Protocol, Service, ServicePort  # noqa: E402
from vppagent.reconcile import Intent, Key, Reconciler  # noqa: E402
from vppagent.kinds.loopback_kind import Loopback, LoopbackDescriptor  # noqa: E402
from vppagent.kinds.route_kind import Hop, OwnedRoute, RouteDescriptor  # noqa: E402
from vppagent.services import ServiceTranslations  # noqa: E402
from vppagent.vpp.client import Connected, VppClient  # noqa: E402

CLUSTER = ipaddress.ip_network("10.0.0.0/9")  # room for 100+ nodes' /22 pod CIDRs
SERVICES = ipaddress.ip_network("10.128.0.0/12")
OWN = ipaddress.ip_network("10.0.0.0/22")  # this node's pod CIDR
READ_ONLY = {"control_ping", "show_version", "sockclnt_create", "sockclnt_delete"}
PROTOS = [(Protocol.TCP, 80), (Protocol.UDP, 53), (Protocol.TCP, 443), (Protocol.SCTP, 9000)]


def api_dir() -> str:
    return os.environ.get("VPPAGENT_API_DIR") or str(ROOT.parent / "shared" / "vpp-api" / "v26.06")


# -- the workload ---------------------------------------------------------------------


class Cluster:
    """What the sources would have delivered, as the features read it."""

    def __init__(self, args: argparse.Namespace):
        self.nodes = {}
        for i in range(args.nodes):
            name = "me" if i == 0 else f"node-{i}"
            self.nodes[name] = Node(name, pod_cidrs=(ipaddress.ip_network((int(CLUSTER[0]) + i * 1024, 22)),),
                                    internal_ips=(ipaddress.ip_address(int(ipaddress.ip_address("192.168.0.0")) + i + 1),))
        self.services = {}
        self._slices = {}
        ports = PROTOS[: args.ports]
        for i in range(args.services):
            vip = ipaddress.ip_address(int(SERVICES[0]) + 10 + i)
            svc = Service("bench", f"svc-{i}", cluster_ips=(vip,),
                          ports=tuple(ServicePort(f"p{j}", p, port, 8000 + j) for j, (p, port) in enumerate(ports)))
            self.services[svc.key] = svc
            eps = tuple(Endpoint((ipaddress.ip_address(int(CLUSTER[0]) + 1024 * (1 + (i + e) % (args.nodes - 1))
                                                       + 2 + (i * 7 + e) % 1000),))
                        for e in range(args.endpoints))
            self._slices[svc.key] = [EndpointSlice(
                "bench", f"svc-{i}-a", service_name=f"svc-{i}",
                ports=tuple(EndpointPort(f"p{j}", p, 8000 + j) for j, (p, _) in enumerate(ports)),
                endpoints=eps)]
        self.pods = args.pods

    def slices_of(self, key):
        return self._slices.get(key, [])


class BenchAgent:
    """The reconciler set up as ``vppagent run`` does, plus the pod stand-in kind."""

    def __init__(self, vpp: VppClient, chunk: int):
        self.r = Reconciler(vpp, chunk=chunk)
        self.features = [NodeConnectivity("me", (CLUSTER,), mode="flat"), ServiceTranslations((SERVICES,))]
        self.r.register(LoopbackDescriptor())
        self.r.register(RouteDescriptor("pod-route", lambda t, p: t == 0 and p.prefixlen == 32 and p.subnet_of(OWN),
                                        lambda: [(0, False)], interface_kinds=("loopback",)))
        for f in self.features:
            for d in f.descriptors():
                self.r.register(d)

    def desired(self, cluster: Cluster) -> int:
        intents = [Intent("loopback", Loopback("pods"))]
        lo = Key("loopback", "pods")
        intents += [Intent("pod-route", OwnedRoute(ipaddress.ip_network((int(OWN[0]) + 2 + i, 32)), (Hop(via=lo),)))
                    for i in range(cluster.pods)]
        for f in self.features:
            fi, problems = f.desired(cluster)
            assert not problems, problems[:3]
            intents += fi
        self.r.set_desired(intents)
        return len(intents)


# -- one phase, in a child process ----------------------------------------------------------


def _mutating(calls: Counter, since: Counter) -> int:
    return sum(n - since.get(m, 0) for m, n in calls.items() if not m.endswith("_dump") and m not in READ_ONLY)


def run_phase(args: argparse.Namespace) -> dict:
    cluster = Cluster(args)
    t_connect = time.perf_counter()
    vpp = VppClient(args.socket, api_dir(), timeout=60, auto_reconnect=args.phase == "vpp-restart").connect()
    connect_s = time.perf_counter() - t_connect
    agent = BenchAgent(vpp, args.chunk)
    t0 = time.perf_counter()
    objects = agent.desired(cluster)
    desired_s = time.perf_counter() - t0
    before = Counter(vpp.calls)
    resync = agent.r.resync()
    res = agent.r.converge()
    out = {"objects": objects, "connect_s": connect_s, "desired_s": desired_s,
           "resync_s": resync.seconds, "found": dict(resync.found),
           "converge_s": res.seconds, "seconds": time.perf_counter() - t0,
           "calls": sum(vpp.calls.values()) - sum(before.values()), "mutating_calls": _mutating(vpp.calls, before),
           "created": res.created, "updated": res.updated, "deleted": res.deleted, "failed": res.failed,
           "in_sync": agent.r.in_sync()}
    if args.phase == "vpp-restart":
        reconnected = threading.Event()
        vpp.subscribe(lambda ev: reconnected.set() if isinstance(ev, Connected) and ev.reconnect else None)
        print("READY", flush=True)  # the parent restarts VPP now
        if not reconnected.wait(120):
            raise SystemExit("VPP did not come back")
        t1 = time.perf_counter()
        before = Counter(vpp.calls)
        agent.r.needs_resync = True  # what the agent does on Connected(reconnect=True)
        res = agent.r.converge()
        out = {"objects": objects, "seconds": time.perf_counter() - t1,
               "calls": sum(vpp.calls.values()) - sum(before.values()), "mutating_calls": _mutating(vpp.calls, before),
               "created": res.created, "failed": res.failed, "in_sync": agent.r.in_sync()}
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    vpp.close()
    return out


# -- orchestration ------------------------------------------------------------------------------


def child(args: argparse.Namespace, phase: str, socket_path: str, on_ready=None) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--socket", socket_path]
    for name in ("pods", "services", "ports", "endpoints", "nodes", "chunk"):
        cmd += [f"--{name}", str(getattr(args, name))]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    result = None
    for line in p.stdout:
        if line.startswith("READY") and on_ready is not None:
            on_ready()
        elif line.startswith("{"):
            result = json.loads(line)
    if p.wait() != 0 or result is None:
        raise SystemExit(f"phase {phase} failed (exit {p.returncode})")
    return result


def bench_backend(args: argparse.Namespace, name: str, sock: str, restart) -> dict:
    out = {"backend": name}
    print(f"[{name}] cold start ...", flush=True)
    out["cold_start"] = child(args, "cold", sock)
    print(f"[{name}] agent restart ...", flush=True)
    out["agent_restart"] = child(args, "restart", sock)
    print(f"[{name}] VPP restart ...", flush=True)
    out["vpp_restart"] = child(args, "vpp-restart", sock, on_ready=restart)
    return out


def table(results: list[dict]) -> str:
    rows = [("backend", "phase", "objects", "seconds", "VPP calls", "mutating", "peak RSS MB", "in sync")]
    for r in results:
        for phase in ("cold_start", "agent_restart", "vpp_restart"):
            p = r[phase]
            rows.append((r["backend"], phase, str(p["objects"]), f"{p['seconds']:.2f}", str(p["calls"]),
                         str(p["mutating_calls"]), f"{p['peak_rss_mb']:.0f}", str(p["in_sync"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--ports", type=int, default=2, choices=range(1, len(PROTOS) + 1))
    ap.add_argument("--endpoints", type=int, default=5)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--chunk", type=int, default=2048)
    ap.add_argument("--out", default=str(ROOT / "perf" / "results"))
    ap.add_argument("--phase", choices=["cold", "restart", "vpp-restart"], help=argparse.SUPPRESS)
    ap.add_argument("--socket", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args)), flush=True)
        return 0

    results = []
    with ExitStack() as stack:
        emu = start_emulator_process(stack, api_dir(), prefix="vppagent-scale-")
        results.append(bench_backend(args, "emulator", emu.socket, emu.restart))
    vpp_bin = os.environ.get("VPPAGENT_VPP_BIN")
    if vpp_bin:
        with VppProcess(vpp_bin) as proc:
            results.append(bench_backend(args, "real_vpp", str(proc.paths.api_socket), proc.restart))
    else:
        print("real VPP: skipped (set VPPAGENT_VPP_BIN to a vpp binary)")

    doc = {
        "workload": {"pods": args.pods, "services": args.services, "ports_per_service": args.ports,
                     "endpoints_per_service": args.endpoints, "nodes": args.nodes,
                     "pods_as": "one /32 route per pod through a tagged loopback (stand-in for CNI pod interfaces)",
                     "driven_by": "model objects built in memory, fed to the real features and reconciler "
                                  "(no fake API server)"},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "results": results,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "reconcile_scale.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(table(results))
    print(f"wrote {out / 'reconcile_scale.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
