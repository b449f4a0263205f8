"""Benchmark: the pod's Linux side (veth + pod configuration), per pod.

For each of N pods (each in its own network namespace, created beforehand and
not timed), times create_veth + configure_pod_side, then check_pod_side, then
remove_pod_side. The host ends live in a private "host" namespace, never the
root one, so each create also pays for one extra worker-thread hop into that
namespace (the agent calls create_veth in its own namespace and does not).
Prints p50/p99 and writes perf/results/linux_side.json. Needs root.

    python -m perf.linux_side_bench [--pods 100]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from vppagent.cni import linux  # noqa: E402

HERE = Path(__file__).resolve().parent
GATEWAY_MAC = "02:fe:00:00:00:01"   # stands in for the VPP interface's MAC


def percentile(ms: list[float], p: float) -> float:
    s = sorted(ms)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 3), "p99_ms": round(percentile(ms, 99), 3),
            "mean_ms": round(statistics.fmean(ms), 3), "max_ms": round(max(ms), 3),
            "total_s": round(sum(ms) / 1000, 3)}


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--out", default=str(HERE / "results/linux_side.json"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2

    tag = secrets.token_hex(3)
    host = f"vpa-lsb-{tag}-h"
    pods = [f"vpa-lsb-{tag}-{i}" for i in range(args.pods)]
    made: list[str] = []
    create_ms, check_ms, remove_ms = [], [], []
    try:
        for name in [host, *pods]:
            subprocess.run(["ip", "netns", "add", name], check=True)
            made.append(name)
        host_path = f"/var/run/netns/{host}"
        for i, name in enumerate(pods):
            path = f"/var/run/netns/{name}"
            ips = [f"10.244.{(i + 2) >> 8}.{(i + 2) & 255}/32", f"fd00:10::{i + 2:x}/128"]
            host_if = f"vpb{tag}{i:03d}"

            def create() -> None:
                linux.in_netns(host_path, lambda: linux.create_veth(host_if, path, "eth0", 1450))
                linux.configure_pod_side(path, "eth0", ips, GATEWAY_MAC, 1450)

            create_ms.append(timed(create))
            diffs: list[str] = []
            check_ms.append(timed(lambda: diffs.extend(linux.check_pod_side(path, "eth0", ips, 1450))))
            if diffs:
                raise SystemExit(f"pod {name} not configured as asked: {diffs}")
        for name in pods:
            remove_ms.append(timed(lambda: linux.remove_pod_side(f"/var/run/netns/{name}", "eth0")))
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)

    results = {
        "pods": args.pods,
        "create_and_configure": summary(create_ms),
        "check": summary(check_ms),
        "remove": summary(remove_ms),
        "env": {"python": platform.python_version(), "machine": platform.machine(),
                "kernel": platform.release(), "cpus": os.cpu_count(),
                "note": "host ends in a private netns: create includes one extra netns thread hop"},
    }
    for k in ("create_and_configure", "check", "remove"):
        r = results[k]
        print(f"{k:<22} p50 {r['p50_ms']:7.2f} ms   p99 {r['p99_ms']:7.2f} ms   "
              f"mean {r['mean_ms']:7.2f} ms   ({r['n']} pods)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
