"""Services at scale: full programming, then endpoint-change latency (incremental vs full recompute).

    python -m perf.services_bench [--services 10000] [--endpoints 10] [--changes 300]
                                  [--full-samples 20] [--out perf/results]

Workload: ``--services`` ClusterIP services of one TCP port, each with
``--endpoints`` ready endpoints in one EndpointSlice, plus this node. Model
objects are built in memory and fed, as the sources' events would be, to
the agent's own ``ClusterState``, the real ``ServiceTranslations`` feature
and the real reconciler (no fake API server: the sources are measured by
their own tests).

Measured, per backend:

1. full programming: desired state, read back (empty VPP), converge; time
   and VPP calls;
2. endpoint change, incremental path (what the agent does with the
   feature's ``desired_delta``): from the EndpointSlice event taken off the
   agent's queue to VPP's reply to the last call; p50/p99/max, and the VPP
   calls per change (all of them, dumps included);
3. endpoint change, full path (the previous design: recompute everything,
   set it, diff everything), ``--full-samples`` times, for comparison.

Backends: the VPP API emulator (a test double, as a separate process) always;
a real VPP 26.06 when ``VPPAGENT_VPP_BIN`` is set (started privately with
startup/vpp_process.py). Writes ``services.json``.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import queue
import random
import statistics
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from startup.vpp_process import VppProcess  # noqa: E402
from testbed.emulator.process import start_emulator_process  # noqa: E402
from vppagent.model.cluster_state import ClusterState  # noqa: E402
from vppagent.model import Endpoint, EndpointPort, EndpointSlice, Node, Protocol, Service, ServicePort  # noqa: E402
from vppagent.reconcile import Reconciler  # noqa: E402
from vppagent.services import ServiceTranslations  # noqa: E402
from vppagent.sources import Upsert  # noqa: E402
from vppagent.vpp import catalog, cnat, routes  # noqa: E402
from vppagent.vpp.api_defs import load_definitions  # noqa: E402
from vppagent.vpp.client import VppClient  # noqa: E402

SERVICES = ipaddress.ip_network("10.96.0.0/12")
PODS = ipaddress.ip_network("10.244.0.0/16")
ME = "node-1"


def api_dir() -> str:
    return os.environ.get("VPPAGENT_API_DIR") or str(ROOT.parent / "shared" / "vpp-api" / "v26.06")


def pod_ip(n: int) -> ipaddress.IPv4Address:
    return ipaddress.ip_address(int(PODS[0]) + 2 + n % (PODS.num_addresses - 4))


def a_slice(i: int, endpoints: int, salt: int = 0) -> EndpointSlice:
    eps = tuple(Endpoint((pod_ip(i * endpoints + e + salt * 7919),), node_name=f"node-{1 + (i + e) % 50}")
                for e in range(endpoints))
    return EndpointSlice("bench", f"svc-{i}-a", service_name=f"svc-{i}",
                         ports=(EndpointPort("http", Protocol.TCP, 8080),), endpoints=eps)


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))]


def run(args: argparse.Namespace, name: str, socket: str) -> dict:
    # Only the messages this benchmark uses are checked against VPP.
    defs = load_definitions(api_dir())
    vpp = VppClient(socket, timeout=60, definitions=defs,
                    required=catalog.required_messages(defs, catalog.requests([cnat, routes]))).connect()
    try:
        # As the agent runs by default (service_reject): a reject route per cluster IP too.
        feature = ServiceTranslations((SERVICES,), node_name=ME, reject_vips=not args.no_reject)
        r = Reconciler(vpp, chunk=args.chunk)
        for d in feature.descriptors():
            r.register(d)
        cluster = ClusterState()
        cluster.apply(Upsert(Node(ME, internal_ips=(ipaddress.ip_address("192.168.0.1"),)), "bench"))
        for i in range(args.services):
            vip = ipaddress.ip_address(int(SERVICES[0]) + 10 + i)
            cluster.apply(Upsert(Service("bench", f"svc-{i}", cluster_ips=(vip,),
                                         ports=(ServicePort("http", Protocol.TCP, 80, 8080),)), "bench"))
            cluster.apply(Upsert(a_slice(i, args.endpoints), "bench"))

        # 1. full programming
        c0 = Counter(vpp.calls)
        t0 = time.perf_counter()
        intents, problems = feature.desired(cluster)
        assert not problems, problems[:3]
        r.set_desired(intents)
        desired_s = time.perf_counter() - t0
        res = r.converge()
        full_s = time.perf_counter() - t0
        full = {"objects": len(intents), "translations": sum(1 for i in intents if i.kind == "cnat-translation"), "seconds": round(full_s, 3), "desired_s": round(desired_s, 3),
                "converge_s": round(res.seconds, 3), "vpp_calls": sum(vpp.calls.values()) - sum(c0.values()),
                "created": res.created, "failed": res.failed, "in_sync": r.in_sync()}
        print(f"[{name}] full programming: {full}", flush=True)

        rng = random.Random(1)
        q: queue.Queue = queue.Queue()

        def change(salt: int) -> tuple[float, Counter]:
            i = rng.randrange(args.services)
            ev = Upsert(a_slice(i, args.endpoints, salt), "bench")
            before = Counter(vpp.calls)
            t = time.perf_counter()
            q.put(ev)  # what the source does
            got = q.get()  # what the agent's loop does
            cluster.apply(got)
            return t, before, got.key

        # 2. incremental path
        lat, calls = [], []
        for n in range(args.changes):
            t, before, key = change(1000 + n)
            delta = feature.desired_delta(cluster, {key})
            assert delta is not None
            r.update_desired(delta.removed, delta.added)
            res = r.converge()
            lat.append((time.perf_counter() - t) * 1000)
            calls.append(Counter({k: v - before.get(k, 0) for k, v in vpp.calls.items() if v - before.get(k, 0)}))
            assert res.updated == 1 and res.failed == 0, res
        per_change = Counter()
        for c in calls:
            per_change.update(c)
        inc = {"changes": args.changes, "p50_ms": round(statistics.median(lat), 3),
               "p99_ms": round(percentile(lat, 99), 3), "max_ms": round(max(lat), 3),
               "vpp_calls_per_change": {k: v / args.changes for k, v in per_change.items()}}
        print(f"[{name}] endpoint change, incremental: {inc}", flush=True)

        # 3. full path, for comparison
        flat = []
        fcalls = Counter()
        for n in range(args.full_samples):
            t, before, _ = change(5000 + n)
            intents, _ = feature.desired(cluster)
            r.set_desired(intents)
            r.converge()
            flat.append((time.perf_counter() - t) * 1000)
            fcalls.update({k: v - before.get(k, 0) for k, v in vpp.calls.items() if v - before.get(k, 0)})
        fullpath = {"changes": args.full_samples, "p50_ms": round(statistics.median(flat), 3),
                    "p99_ms": round(percentile(flat, 99), 3), "max_ms": round(max(flat), 3),
                    "vpp_calls_per_change": {k: v / args.full_samples for k, v in fcalls.items()}}
        print(f"[{name}] endpoint change, full recompute: {fullpath}", flush=True)
        return {"backend": name, "full_programming": full, "endpoint_change_incremental": inc,
                "endpoint_change_full_recompute": fullpath, "in_sync": r.in_sync()}
    finally:
        vpp.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--changes", type=int, default=300)
    ap.add_argument("--full-samples", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=2048)
    ap.add_argument("--no-reject", action="store_true", help="without the reject routes (service_reject: false)")
    ap.add_argument("--out", default=str(ROOT / "perf" / "results"))
    args = ap.parse_args()
    load_before = os.getloadavg()
    results = []
    with ExitStack() as stack:
        emu = start_emulator_process(stack, api_dir(), prefix="vppagent-svcbench-")
        results.append(run(args, "emulator", emu.socket))
    vpp_bin = os.environ.get("VPPAGENT_VPP_BIN")
    if vpp_bin:
        with VppProcess(vpp_bin) as proc:
            results.append(run(args, "real_vpp", str(proc.paths.api_socket)))
    else:
        print("real VPP: skipped (set VPPAGENT_VPP_BIN to a vpp binary)")
    doc = {
        "workload": {"services": args.services, "ports_per_service": 1, "endpoints_per_service": args.endpoints,
                     "driven_by": "model objects in memory -> ClusterState -> ServiceTranslations -> Reconciler "
                                  "(no fake API server)",
                     "latency": "from the EndpointSlice event taken off the agent's queue to VPP's last reply"},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    # The machine is shared: the 1-minute load average before and after the run.
                    "load_average_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]},
        "results": results,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "services.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out / 'services.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
