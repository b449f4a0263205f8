"""CNI ADD/DEL latency and leak check (issue 4's targets).

Drives the agent's CNI gRPC backend exactly as ``vppagent-cni`` does (one
gRPC call per command, over the unix socket) with real network
namespaces and veth pairs, against a real VPP when VPPAGENT_VPP_BIN is set
(else the emulator, which the output says).

Measures:
- ADD and DEL latency p50/p99 over N sequential pods, and over M pods added
  in parallel (one thread per pod);
- leaks after C ADD/DEL cycles: VPP pod interfaces, VPP host routes in the
  pod CIDR, veth host ends, IPAM entries and attachment records, counted
  before and after.

With spare interfaces (``--spares``, the agent's ``pod_spare_interfaces``),
the sequential pods run twice: back to back (the pool runs dry after
``--spares`` pods: the rest attach the slow way), and paced ``--gap-ms``
apart (the pool refills in the pauses, as between a runtime's sandboxes).

Usage: python -m perf.cni_bench [--sequential 200] [--parallel 20] [--cycles 1000] [--spares 8] [--gap-ms 100]
       [--af-packet-version 2|3]
Writes perf/results/cni_bench.json. Needs root (network namespaces).
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from testbed.podnet import Pods, container_id, host_links, running_agent  # noqa: E402
from vppagent.cni import pod_interface_kind, pool  # noqa: E402
from vppagent.vpp import af_packet, interfaces, routes  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))], 2)


def summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99), "max_ms": round(max(ms), 2),
            "mean_ms": round(statistics.fmean(ms), 2)}


def census(h) -> dict[str, int]:
    net = ipaddress.ip_network("10.244.0.0/16")
    return {
        "vpp_pod_interfaces": sum(1 for i in interfaces.dump(h.vpp) if i.tag.startswith(pod_interface_kind.TAG_PREFIX)),
        "vpp_spare_interfaces": sum(1 for i in interfaces.dump(h.vpp) if i.tag.startswith(pool.TAG_PREFIX)),
        "vpp_af_packet_interfaces": len(af_packet.dump(h.vpp)),
        "spare_veth_ends": len(pool.spare_links()),
        "vpp_pod_routes": sum(1 for r in routes.dump(h.vpp) if r.prefix.subnet_of(net) and r.prefix.prefixlen == 32),
        "veth_host_ends": len(host_links()),
        "ipam_entries": len(h.agent.pod_network.ipam.allocations()),
        "attachment_records": len(h.agent.pod_network.store.all()),
    }


def full_pool(h, n: int) -> None:
    """Wait (up to 60 s) until the agent holds ``n`` ready spares, as between bursts of pods."""
    deadline = time.monotonic() + 60
    while h.agent.pod_network.pool.counts() != (n, 0):
        if time.monotonic() > deadline:
            raise SystemExit(f"the spare pool did not fill: {h.agent.pod_network.pool.counts()}")
        time.sleep(0.05)


def report(what: str, r: dict) -> None:
    print(f"{what}: ADD p50 {r['add']['p50_ms']} ms p99 {r['add']['p99_ms']} ms; "
          f"DEL p50 {r['del']['p50_ms']} ms p99 {r['del']['p99_ms']} ms")


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    out = fn(*args)
    ms = (time.perf_counter() - t0) * 1000
    err = out[1] if isinstance(out, tuple) else out
    if err is not None:
        raise SystemExit(f"CNI call failed: {err}")
    return ms


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sequential", type=int, default=200)
    ap.add_argument("--parallel", type=int, default=20)
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--spares", type=int, default=8, help="pod_spare_interfaces (0: none)")
    ap.add_argument("--af-packet-version", type=int, choices=(2, 3), default=2, help="pod_af_packet_version")
    ap.add_argument("--gap-ms", type=float, default=100.0,
                    help="pause between ADDs of the paced run (a runtime spends about that making a sandbox)")
    args = ap.parse_args()
    vpp_bin = os.environ.get("VPPAGENT_VPP_BIN")
    backend = f"real VPP ({vpp_bin})" if vpp_bin else "emulator (no packets; VPP call latency is not real VPP's)"
    print(f"backend: {backend}")
    out: dict = {"backend": backend, "machine": platform.node(), "cpus": os.cpu_count(), "driver": "veth+af_packet",
                 "spares": args.spares, "af_packet_version": args.af_packet_version, "gap_ms": args.gap_ms}
    pods = Pods()
    try:
        with running_agent(vpp_bin=vpp_bin, pod_cidrs=("10.244.0.0/20",), VPPAGENT_LOG_LEVEL="warning",
                           VPPAGENT_POD_SPARE_INTERFACES=str(args.spares),
                           VPPAGENT_POD_AF_PACKET_VERSION=str(args.af_packet_version)) as h:
            full_pool(h, args.spares)
            base = census(h)
            out["census_before"] = base
            # Sequential.
            nss = [pods.netns(i) for i in range(args.sequential)]
            cids = [container_id(i) for i in range(args.sequential)]
            add_ms = [timed(h.add, c, n) for c, n in zip(cids, nss)]
            del_ms = [timed(h.delete, c, n) for c, n in zip(cids, nss)]
            out["sequential"] = {"add": summary(add_ms), "del": summary(del_ms)}
            report(f"sequential x{args.sequential}, back to back", out["sequential"])
            # Paced: the same pods with a pause between ADDs, as a runtime makes sandboxes.
            full_pool(h, args.spares)
            paced_add, paced_del = [], []
            for c, n in zip(cids, nss):
                time.sleep(args.gap_ms / 1000)
                paced_add.append(timed(h.add, c, n))
            for c, n in zip(cids, nss):
                time.sleep(args.gap_ms / 1000)
                paced_del.append(timed(h.delete, c, n))
            out["paced"] = {"add": summary(paced_add), "del": summary(paced_del)}
            report(f"sequential x{args.sequential}, {args.gap_ms:g} ms apart", out["paced"])
            full_pool(h, args.spares)
            # Parallel.
            pn = nss[:args.parallel]
            pc = [container_id(10_000 + i) for i in range(args.parallel)]
            with ThreadPoolExecutor(args.parallel) as ex:
                padd = list(ex.map(lambda a: timed(h.add, *a), zip(pc, pn)))
            with ThreadPoolExecutor(args.parallel) as ex:
                pdel = list(ex.map(lambda a: timed(h.delete, *a), zip(pc, pn)))
            out["parallel"] = {"add": summary(padd), "del": summary(pdel)}
            report(f"parallel x{args.parallel}", out["parallel"])
            # Cycles: the same few namespaces, fresh container ids.
            t0 = time.perf_counter()
            for i in range(args.cycles):
                ns = nss[i % len(nss)]
                c = container_id(100_000 + i)
                timed(h.add, c, ns)
                timed(h.delete, c, ns)
            out["cycles"] = {"n": args.cycles, "seconds": round(time.perf_counter() - t0, 1)}
            full_pool(h, args.spares)
            after = census(h)
            out["census_after"] = after
            leaks = {k: after[k] - base[k] for k in base if after[k] != base[k]}
            out["leaks"] = leaks
            print(f"{args.cycles} ADD/DEL cycles in {out['cycles']['seconds']} s; leaks: {leaks or 'none'}")
    finally:
        pods.close()
    RESULTS.mkdir(exist_ok=True)
    name = "cni_bench_real_vpp.json" if vpp_bin else "cni_bench_emulator.json"
    (RESULTS / name).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS / name}")
    return 1 if out["leaks"] else 0


if __name__ == "__main__":
    sys.exit(main())
