"""API call rate: plain vpp_papi loop vs our synchronous path vs our pipelined path.

Measures calls per second for two workloads, ``control_ping`` (the protocol's
floor) and ``ip_route_add_del`` of /32 routes (a hot programming message,
added then removed so VPP ends as it began), against the emulator and, when
``VPPAGENT_VPP_BIN`` or ``VPPAGENT_VPP_SOCKET`` is set, a real VPP.

    python -m perf.api_rate [--calls N] [--out perf/results]

Prints a table and writes ``api_rate.json`` (one entry per backend).
Connect plus compatibility check time is reported too.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import sys
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from vpp_papi import VPPApiClient  # noqa: E402  (perf may use vpp_papi directly)

from startup.vpp_process import VppProcess  # noqa: E402
from testbed.emulator.process import start_emulator_process  # noqa: E402
from vppagent.vpp import routes  # noqa: E402
from vppagent.vpp.client import VppClient  # noqa: E402


def api_dir() -> str:
    env = os.environ.get("VPPAGENT_API_DIR")
    return env or str(ROOT.parent / "shared" / "vpp-api" / "v26.06")


def route_list(n: int) -> list[routes.Route]:
    base = int(ipaddress.IPv4Address("10.200.0.0"))
    return [routes.Route.of(ipaddress.IPv4Network((base + i, 32)),
                            routes.Path(next_hop=ipaddress.IPv4Address("127.0.0.1")))
            for i in range(n)]


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else float("inf")


def bench_papi(sock: str, adir: str, n: int) -> dict:
    """(a): the plain synchronous vpp_papi loop, as most Python tools use it."""
    c = VPPApiClient(apidir=adir, server_address=sock, use_socket=True)
    c.connect("bench-papi")
    try:
        t = time.perf_counter()
        for _ in range(n):
            c.api.control_ping()
        ping = rate(n, time.perf_counter() - t)
        rs = route_list(n)
        fields = [routes.route_fields(r) for r in rs]
        t = time.perf_counter()
        for f in fields:
            c.api.ip_route_add_del(**f)
        add = rate(n, time.perf_counter() - t)
        for f in fields:
            c.api.ip_route_add_del(**{**f, "is_add": False})
    finally:
        c.disconnect()
    return {"control_ping": ping, "ip_route_add_del": add}


def bench_ours(sock: str, adir: str, n: int) -> tuple[dict, dict, float]:
    t = time.perf_counter()
    vpp = VppClient(sock, adir).connect()
    connect_ms = (time.perf_counter() - t) * 1000
    try:
        t = time.perf_counter()
        for _ in range(n):
            vpp.call("control_ping")
        sync_ping = rate(n, time.perf_counter() - t)
        rs = route_list(n)
        t = time.perf_counter()
        for r in rs:
            routes.add(vpp, r)
        sync_add = rate(n, time.perf_counter() - t)
        routes.bulk_delete(vpp, rs)

        t = time.perf_counter()
        vpp.bulk(("control_ping", {}) for _ in range(n))
        bulk_ping = rate(n, time.perf_counter() - t)
        t = time.perf_counter()
        routes.bulk_add(vpp, rs)
        bulk_add = rate(n, time.perf_counter() - t)
        routes.bulk_delete(vpp, rs)
    finally:
        vpp.close()
    return ({"control_ping": sync_ping, "ip_route_add_del": sync_add},
            {"control_ping": bulk_ping, "ip_route_add_del": bulk_add}, connect_ms)


def run_backend(name: str, sock: str, adir: str, n: int) -> dict:
    papi = bench_papi(sock, adir, n)
    sync, bulk, connect_ms = bench_ours(sock, adir, n)
    return {
        "backend": name,
        "calls": n,
        "connect_and_check_ms": round(connect_ms, 1),
        "calls_per_s": {"a_vpp_papi_sync": papi, "b_ours_sync": sync, "c_ours_pipelined": bulk},
        "pipelined_over_papi": {k: round(bulk[k] / papi[k], 1) for k in papi},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--out", default=str(ROOT / "perf" / "results"))
    args = ap.parse_args(argv)
    adir = api_dir()
    results = []
    with ExitStack() as stack:
        results.append(run_backend("emulator", start_emulator_process(stack, adir, prefix="vppagent-bench-").socket, adir, args.calls))
        sock = os.environ.get("VPPAGENT_VPP_SOCKET")
        binary = os.environ.get("VPPAGENT_VPP_BIN")
        if not sock and binary:
            sock = str(stack.enter_context(VppProcess(binary)).paths.api_socket)
        if sock:
            results.append(run_backend("real VPP", sock, adir, args.calls))
        else:
            print("real VPP: skipped (set VPPAGENT_VPP_BIN or VPPAGENT_VPP_SOCKET)")
    for r in results:
        print(f"\n{r['backend']}: {r['calls']} calls each, connect+check {r['connect_and_check_ms']} ms")
        print(f"  {'path':<22}{'control_ping/s':>16}{'ip_route_add_del/s':>20}")
        for path, v in r["calls_per_s"].items():
            print(f"  {path:<22}{v['control_ping']:>16,.0f}{v['ip_route_add_del']:>20,.0f}")
        print(f"  pipelined / plain vpp_papi: {r['pipelined_over_papi']}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "api_rate",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "kernel": platform.release()},
        "results": results,
    }
    (out / "api_rate.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {out / 'api_rate.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
