"""What a node's af_packet pod interfaces cost it while idle, by ring version.

A private VPP gets N veth + af_packet interfaces with the pods' rings
(``vppagent.cni.pool.Rings``), admin up in interrupt mode, as pods have them.
At each checkpoint it measures, with nothing sent:
- VPP's API round trip (control_ping, mean of 200);
- the node's CPU while idle for 5 s (busy and softirq, % of all CPUs);
- the time of one af_packet create and delete.
Then it times af_packet create and delete with RCU grace periods normal and
expedited (/sys/kernel/rcu_expedited, put back afterwards).

Usage: python -m perf.afpacket_scale [--n 150] [--step 50] [--versions 2,3]
Needs root and VPPAGENT_VPP_BIN. Writes perf/results/afpacket_scale.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from pyroute2 import IPRoute  # noqa: E402

from startup.vpp_process import VppProcess  # noqa: E402
from testbed.targets import api_dir  # noqa: E402
from vppagent.cni.pool import Rings, attach_af_packet  # noqa: E402
from vppagent.cni.rcu import PATH as RCU_PATH  # noqa: E402
from vppagent.vpp import af_packet, interfaces  # noqa: E402
from vppagent.vpp.client import VppClient  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MTU = 1450
MAC = "02:fe:00:00:00:01"


def veth(ipr: IPRoute, name: str) -> None:
    ipr.link("add", ifname=name, kind="veth", peer={"ifname": name + "x"})
    for n in (name, name + "x"):
        Path(f"/proc/sys/net/ipv6/conf/{n}/disable_ipv6").write_text("1")  # as the agent's spares: silent
        ipr.link("set", index=ipr.link_lookup(ifname=n)[0], state="up")


def attach(vpp: VppClient, name: str, rings: Rings) -> float:
    t = time.perf_counter()
    sw = attach_af_packet(vpp, name, MAC, MTU, rings)
    ms = (time.perf_counter() - t) * 1000
    vpp.call("sw_interface_set_rx_mode", sw_if_index=sw, queue_id_valid=False, mode=2)  # interrupt
    interfaces.set_admin_up(vpp, sw)
    return ms


def ping_ms(vpp: VppClient, n: int = 200) -> float:
    t = time.perf_counter()
    for _ in range(n):
        vpp.call("control_ping")
    return (time.perf_counter() - t) / n * 1000


def idle_cpu(seconds: float = 5.0) -> dict[str, float]:
    def stat() -> list[int]:
        return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    a = stat()
    time.sleep(seconds)
    d = [y - x for x, y in zip(a, stat())]
    total = sum(d)
    return {"busy_pct": round(100 * (total - d[3] - d[4]) / total, 1), "softirq_pct": round(100 * d[6] / total, 1)}


def create_delete_ms(vpp: VppClient, ipr: IPRoute, rings: Rings, tag: str, n: int = 5) -> tuple[float, float]:
    made, dele = [], []
    for i in range(n):
        name = f"vpq{tag}{i}"
        veth(ipr, name)
        try:
            made.append(attach(vpp, name, rings))
            t = time.perf_counter()
            af_packet.delete(vpp, name)
            dele.append((time.perf_counter() - t) * 1000)
        finally:
            ipr.link("del", ifname=name)
    return round(statistics.median(made), 1), round(statistics.median(dele), 1)


def run_version(binary: str, version: int, n: int, step: int) -> dict:
    rings = Rings(version=version)
    points, names = [], []
    with VppProcess(binary) as proc, IPRoute() as ipr:
        vpp = VppClient(str(proc.paths.api_socket), api_dir(), timeout=60).connect()
        try:
            while True:
                time.sleep(0.5)
                create, delete = create_delete_ms(vpp, ipr, rings, f"c{len(names)}x", n=3)
                point = {"interfaces": len(names), "control_ping_ms": round(ping_ms(vpp), 3),
                         "af_packet_create_ms": create, "af_packet_delete_ms": delete, **idle_cpu()}
                points.append(point)
                print(f"v{version} {point}", flush=True)
                if len(names) >= n:
                    break
                for _ in range(step):
                    name = f"vpq{version}n{len(names)}"
                    veth(ipr, name)
                    names.append(name)
                    attach(vpp, name, rings)
        finally:
            for name in names:
                ipr.link("del", ifname=name)
            vpp.close()
    return {"version": version, "points": points}


def rcu_comparison(binary: str) -> dict:
    before = RCU_PATH.read_text().strip()
    out = {}
    try:
        with VppProcess(binary) as proc, IPRoute() as ipr:
            vpp = VppClient(str(proc.paths.api_socket), api_dir(), timeout=60).connect()
            for setting in ("0", "1"):
                RCU_PATH.write_text(setting + "\n")
                create, delete = create_delete_ms(vpp, ipr, Rings(), "r" + setting)
                key = "expedited" if setting == "1" else "normal"
                out[key] = {"af_packet_create_ms": create, "af_packet_delete_ms": delete}
                print(f"rcu {key}: {out[key]}", flush=True)
            vpp.close()
    finally:
        RCU_PATH.write_text(before + "\n")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--step", type=int, default=50)
    ap.add_argument("--versions", default="2,3")
    args = ap.parse_args()
    binary = os.environ.get("VPPAGENT_VPP_BIN")
    if not binary or os.geteuid() != 0:
        print("needs root and VPPAGENT_VPP_BIN (a VPP binary)", file=sys.stderr)
        return 2
    out = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}",
           "mtu": MTU, "rcu_expedited_during_scale": RCU_PATH.read_text().strip(),
           "versions": [run_version(binary, int(v), args.n, args.step) for v in args.versions.split(",")],
           "rcu": rcu_comparison(binary)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "afpacket_scale.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS / 'afpacket_scale.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
