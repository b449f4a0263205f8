"""``make demo`` (``python -m testbed.demo``): two pods attached to VPP, a ping between them, then clean-up.

It lives in the test bed, not in the product, because without a VPP it runs on
the emulator (``testbed.emulator``, a test double of VPP's API) and says so.

Owns the demo's steps, end to end: pick a VPP (a running one, one started
from a binary, or the emulator, saying which), create two network
namespaces as pods with veth pairs, attach the host ends to VPP with
af_packet, program addresses, neighbours and /32 routes, ping one pod from
the other through VPP, print what was programmed, and remove all of it,
leaving VPP and the node as they were, on success and on failure alike.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from testbed import netpods, targets
from testbed.emulator.process import start_emulator_process
from vppagent.vpp import interfaces, neighbors, routes
from vppagent.vpp.client import VppClient

TAG_PREFIX = "vppagent-demo:"
LOOPBACK_ADDR = ipaddress.ip_interface("10.99.255.1/32")


@dataclass(frozen=True)
class DemoPod:
    name: str
    netns: str
    host_if: str
    ip: ipaddress.IPv4Interface


PODS = (
    DemoPod("a", "vppagent-demo-a", "vpdemo-a", ipaddress.IPv4Interface("10.99.0.2/32")),
    DemoPod("b", "vppagent-demo-b", "vpdemo-b", ipaddress.IPv4Interface("10.99.0.3/32")),
)


@dataclass
class Backend:
    kind: str  # "running VPP", "VPP started from <bin>", "emulator"
    socket: str
    real: bool


def _default_api_dir() -> str | None:
    env = os.environ.get("VPPAGENT_API_DIR")
    if env:
        return env
    if Path("/usr/share/vpp/api").is_dir():
        return None
    # A checkout next to the project's shared/ definitions (development, CI).
    here = Path(__file__).resolve().parents[2] / "shared" / "vpp-api" / "v26.06"
    return str(here) if here.is_dir() else None


def start_backend(stack: ExitStack, api_dir: str | None, say: Callable[[str], None]) -> Backend:
    sock = os.environ.get("VPPAGENT_VPP_SOCKET")
    if sock:
        say(f"Using the running VPP at {sock}.")
        return Backend("running VPP", sock, True)
    binary = os.environ.get("VPPAGENT_VPP_BIN")
    if binary:
        target = targets.private_vpp(stack, binary=binary)
        assert target.proc is not None
        say(f"Started VPP from {binary} (pid {target.proc.pid}, work dir {target.workdir}).")
        return Backend(f"VPP started from {binary}", target.socket, True)
    sock = start_emulator_process(stack, api_dir).socket
    say("No VPP found (set VPPAGENT_VPP_BIN or VPPAGENT_VPP_SOCKET): using the VPP API emulator "
        "of the test bed (testbed/emulator). It is a test double: everything is programmed through the real API "
        "protocol, but NO PACKETS FLOW, so the ping step is skipped.")
    return Backend("emulator", sock, False)


def _attach(vpp: VppClient, stack: ExitStack, pod: DemoPod, loopback: int) -> tuple[int, str]:
    """Create the pod and wire it to VPP as the pod driver does; every undo step goes on ``stack``."""
    p = netpods.pod(vpp, stack, pod.netns, pod.host_if, [pod.ip], loopback=loopback, tag=TAG_PREFIX + pod.name)
    return p.sw_if_index, p.mac


def _ping(src: DemoPod, dst: DemoPod) -> tuple[bool, str]:
    r = subprocess.run(
        ["ip", "netns", "exec", src.netns, "ping", "-c", "3", "-i", "0.2", "-W", "2", str(dst.ip.ip)],
        capture_output=True, text=True, timeout=30,
    )
    summary = [line for line in r.stdout.splitlines() if "packet loss" in line or "rtt" in line]
    return r.returncode == 0, "\n    ".join(summary) or r.stderr.strip()


def _show(vpp: VppClient, say: Callable[[str], None]) -> None:
    say("Programmed in VPP:")
    for i in interfaces.dump(vpp):
        if i.tag.startswith(TAG_PREFIX) or i.name.startswith("loop"):
            say(f"  interface {i.sw_if_index:>3} {i.name:<16} tag={i.tag or '-':<18} "
                f"up={i.admin_up} mac={i.mac}")
    for r in routes.dump(vpp):
        if r.prefix.subnet_of(ipaddress.ip_network("10.99.0.0/16")):
            paths = ", ".join(f"via {p.next_hop} sw_if_index {p.sw_if_index}" for p in r.paths)
            say(f"  route {r.prefix} {paths}")
    for n in neighbors.dump(vpp):
        if n.ip in ipaddress.ip_network("10.99.0.0/16"):
            say(f"  neighbour {n.ip} {n.mac} sw_if_index {n.sw_if_index}")


def run(api_dir: str | None = None, say: Callable[[str], None] = print) -> int:
    api_dir = api_dir or _default_api_dir()
    with ExitStack() as outer:
        backend = start_backend(outer, api_dir, say)
        t0 = time.perf_counter()
        vpp = outer.enter_context(VppClient(backend.socket, api_dir).connect())
        say(f"Connected to {backend.kind} at {backend.socket} (API compatible, "
            f"{(time.perf_counter() - t0) * 1000:.0f} ms).")
        ok = True
        with ExitStack() as undo:
            loopback = interfaces.create_loopback(vpp)
            undo.callback(interfaces.delete_loopback, vpp, loopback)
            interfaces.set_tag(vpp, loopback, TAG_PREFIX + "gateway")
            interfaces.add_address(vpp, loopback, LOOPBACK_ADDR)
            interfaces.set_admin_up(vpp, loopback)
            for pod in PODS:
                sw, mac = _attach(vpp, undo, pod, loopback)
                say(f"Pod {pod.name}: netns {pod.netns}, {pod.ip.ip} on eth0 ({mac}), "
                    f"VPP host-{pod.host_if} sw_if_index {sw}.")
            _show(vpp, say)
            if backend.real:
                ok, summary = _ping(PODS[0], PODS[1])
                say(f"Ping {PODS[0].ip.ip} -> {PODS[1].ip.ip} through VPP: "
                    f"{'OK' if ok else 'FAILED'}\n    {summary}")
            else:
                say("Ping skipped: the emulator forwards no packets.")
            say("Cleaning up.")
        leftovers = [i for i in interfaces.dump(vpp) if i.tag.startswith(TAG_PREFIX)]
        if leftovers:
            say(f"Clean-up left {len(leftovers)} interface(s) in VPP: {leftovers}")
            return 1
        say(f"Done: VPP and the node are as they were ({vpp.calls.total()} API calls).")
        return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testbed.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--api-dir", default=os.environ.get("VPPAGENT_API_DIR"),
                    help="VPP's API definitions (default: $VPPAGENT_API_DIR, /usr/share/vpp/api or ../shared)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("demo: needs root to create network namespaces and veth pairs", file=sys.stderr)
        return 2
    from startup.vpp_process import VppStartError
    from testbed.emulator.process import EmulatorStartError
    from vppagent.cni.linux import LinuxNetError
    from vppagent.vpp.errors import VppError

    try:
        return run(args.api_dir)
    except (VppError, VppStartError, LinuxNetError, EmulatorStartError) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
