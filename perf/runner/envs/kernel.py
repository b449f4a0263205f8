"""The kernel baseline: two netns pods joined by veth pairs to a bridge, or routed by a third netns.

Everything lives in three private netns (``vpa-pk<id>-c``/``-s``/``-x``);
the root netns is not touched. Same pod MTU and offload settings as the VPP
scenarios, so the baseline forwards the same packets.
"""
from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from perf.runner.envs.common import EnvError, Setup, need_root, netns_prefix, rx_packets, set_offloads
from perf.runner.scenario import Scenario


def _ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise EnvError(f"ip {' '.join(args)}: {r.stderr.strip()}")


@contextmanager
def kernel_env(sc: Scenario) -> Iterator[Setup]:
    need_root("the kernel baseline")
    ident = secrets.token_hex(3)
    c, s, x = (f"vpa-pk{ident}-{n}" for n in "csx")
    made: list[str] = []
    try:
        for ns in (c, s, x):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        if sc.kernel_mode == "bridge":
            _ip("-n", x, "link", "add", "br0", "type", "bridge")
            _ip("-n", x, "link", "set", "br0", "up")
            addrs = {c: ("10.250.0.2/24", None), s: ("10.250.0.3/24", None)}
        else:
            subprocess.run(netns_prefix(x) + ["sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True,
                           capture_output=True, timeout=10)
            addrs = {c: ("10.250.1.2/24", "10.250.1.1"), s: ("10.250.2.2/24", "10.250.2.1")}
        for ns, side in ((c, "c"), (s, "s")):
            addr, gw = addrs[ns]
            _ip("-n", x, "link", "add", f"x{side}", "mtu", str(sc.mtu), "type", "veth",
                "peer", "name", "eth0", "netns", ns)
            if sc.kernel_mode == "bridge":
                _ip("-n", x, "link", "set", f"x{side}", "master", "br0")
            else:
                _ip("-n", x, "addr", "add", f"{gw}/24", "dev", f"x{side}")
            _ip("-n", x, "link", "set", f"x{side}", "up")
            _ip("-n", ns, "link", "set", "eth0", "mtu", str(sc.mtu))
            _ip("-n", ns, "addr", "add", addr, "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            if gw:
                _ip("-n", ns, "route", "add", "default", "via", gw)
            set_offloads(ns, sc.pod_offloads is not False)
        server_ip = addrs[s][0].split("/")[0]
        yield Setup(client_prefix=netns_prefix(c), server_prefix=netns_prefix(s), target_ip=server_ip,
                    server_ip=server_ip, server_rx_packets=lambda: rx_packets(s),
                    notes={"kernel_mode": sc.kernel_mode, "mtu": sc.mtu, "pod_offloads": sc.offloads_label})
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
