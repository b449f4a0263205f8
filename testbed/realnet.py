"""Two real VPPs joined by a veth "underlay", one pod (a netns) behind each.

Used by the real-VPP tier of the connectivity tests and by perf/encryption_bench.py. Everything
it creates has a unique name (``vu<id>a``/``vu<id>b`` underlay veth ends, ``vp<id>a``/``vp<id>b``
pod veth ends in the root netns, netns ``vpa-enc-<id>-a``/``-b``) and is removed by ``close()``,
even after a failure. It never touches existing interfaces, addresses or routes of the root netns.

Addressing: underlay 192.0.2.1/24 (node-a's VPP) and 192.0.2.2/24 (node-b's); pods 10.244.1.2 and
10.244.2.2 with VPP as their gateway (10.244.x.1/24 on VPP's pod interface).
"""
from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import IPRoute, NetNS, netns

from startup.vpp_process import VppPaths, VppProcess, render_startup_conf
from testbed.targets import real_vpp_reason
from vppagent.vpp import af_packet, features, interfaces
from vppagent.vpp.client import VppClient

ETH_P_ALL = 0x0003
SIDES = {"node-a": ("a", "192.0.2.1/24", "10.244.1.1/24", "10.244.1.2"),
         "node-b": ("b", "192.0.2.2/24", "10.244.2.1/24", "10.244.2.2")}


@dataclass
class RealNode:
    name: str
    vpp_proc: VppProcess
    vpp: VppClient
    uplink: str  # root-netns veth end VPP's af_packet uses
    pod_link: str
    pod_ns: str
    pod_ip: str


@dataclass
class RealTopology:
    api_dir: str
    vpp_bin: str
    # Our plugins to load, and whether the pods' interfaces get kpod's IPv4 GSO fix-up (pods
    # that keep their offloads, as with the agent's pod_offloads).
    plugin_dirs: tuple[str | Path, ...] = ()
    pod_gso_fix: bool = False
    id: str = field(default_factory=lambda: secrets.token_hex(3))
    nodes: dict[str, RealNode] = field(default_factory=dict)
    _links: list[str] = field(default_factory=list)
    _netns: list[str] = field(default_factory=list)

    def start(self) -> "RealTopology":
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        i = self.id
        with IPRoute() as ip:
            ip.link("add", ifname=f"vu{i}a", kind="veth", peer=f"vu{i}b")
            self._links.append(f"vu{i}a")
            for name, (s, _, _, pod_ip) in SIDES.items():
                ns = f"vpa-enc-{i}-{s}"
                netns.create(ns)
                self._netns.append(ns)
                ip.link("add", ifname=f"vp{i}{s}", kind="veth", peer=f"vq{i}{s}")
                self._links.append(f"vp{i}{s}")
                idx = ip.link_lookup(ifname=f"vq{i}{s}")[0]
                ip.link("set", index=idx, net_ns_fd=ns)
                for link in (f"vu{i}{s}", f"vp{i}{s}"):
                    ip.link("set", index=ip.link_lookup(ifname=link)[0], state="up")
            for name, (s, _, gw_cidr, pod_ip) in SIDES.items():
                ns = f"vpa-enc-{i}-{s}"
                with NetNS(ns) as pn:
                    lo = pn.link_lookup(ifname="lo")[0]
                    pn.link("set", index=lo, state="up")
                    idx = pn.link_lookup(ifname=f"vq{i}{s}")[0]
                    pn.link("set", index=idx, ifname="eth0")
                    pn.addr("add", index=idx, address=pod_ip, prefixlen=24)
                    pn.link("set", index=idx, state="up", mtu=1400)
                    pn.route("add", dst="0.0.0.0/0", gateway=gw_cidr.split("/")[0])
        for name, (s, under, gw_cidr, pod_ip) in SIDES.items():
            work = Path(f"/tmp/vppagent-enc-{i}-{s}")
            conf = render_startup_conf(VppPaths(work), plugin_paths=tuple(str(d) for d in self.plugin_dirs)).replace(
                "  nodaemon\n", "  nodaemon\n  poll-sleep-usec 100\n")
            proc = VppProcess(self.vpp_bin, workdir=work, config=conf).start()
            vpp = VppClient(str(proc.paths.api_socket), self.api_dir).connect()
            node = RealNode(name, proc, vpp, f"vu{i}{s}", f"vp{i}{s}", f"vpa-enc-{i}-{s}", pod_ip)
            self.nodes[name] = node
            for link, cidr in ((node.uplink, under), (node.pod_link, gw_cidr)):
                # As the pod interface driver does: the kernel's partial checksums and GSO are
                # carried as offload metadata (else VPP forwards TCP with bad checksums).
                sw = af_packet.create(vpp, link, flags=af_packet.Flags.QDISC_BYPASS | af_packet.Flags.CKSUM_GSO)
                interfaces.add_address(vpp, sw, cidr)
                if link == node.pod_link and self.pod_gso_fix:
                    features.enable(vpp, sw, *features.KPOD_GSO_FIX)
                interfaces.set_admin_up(vpp, sw)

    def close(self) -> None:
        for node in self.nodes.values():
            try:
                node.vpp.close()
            finally:
                alive = node.vpp_proc.alive()
                node.vpp_proc.stop()
                work = node.vpp_proc.workdir
                if not alive and work is not None:
                    # VPP died under the test: keep its log and stderr for the report.
                    keep = Path(f"/tmp/vppagent-enc-crash-{self.id}-{node.name}")
                    keep.mkdir(exist_ok=True)
                    for f in ("vpp.log", "vpp.stderr"):
                        if (work / f).exists():
                            (keep / f).write_bytes((work / f).read_bytes())
                subprocess.run(["rm", "-rf", str(work)], check=False)
        self.nodes.clear()
        with IPRoute() as ip:
            for link in self._links:
                found = ip.link_lookup(ifname=link)
                if found:
                    ip.link("del", index=found[0])
        for ns in self._netns:
            try:
                netns.remove(ns)
            except OSError:
                pass
        self._links.clear()
        self._netns.clear()

    def disable_pod_offloads(self) -> None:
        """Pods compute their own checksums and cut their own segments (TX checksum offload, TSO
        and GSO off on their eth0), as with the agent's ``pod_offloads: false``: the labelled
        offloads-off rows, and a VPP without our kpod plugin."""
        for node in self.nodes.values():
            r = subprocess.run(["ip", "netns", "exec", node.pod_ns, sys.executable, "-c",
                                "from startup.ethtool import disable_offloads; disable_offloads('eth0')"],
                               capture_output=True, text=True, cwd=str(Path(__file__).resolve().parents[2]))
            if r.returncode != 0:
                raise RuntimeError(f"disabling offloads in {node.pod_ns}: {r.stderr.strip()}")

    def exec(self, node: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.nodes[node].pod_ns, *argv],
                              capture_output=True, text=True, timeout=timeout)


class UplinkCapture:
    """Frames received on both underlay veth ends (each end's RX is the other VPP's TX)."""

    def __init__(self, links: list[str]):
        self.frames: list[bytes] = []
        self._socks = []
        for link in links:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            s.bind((link, 0))
            s.settimeout(0.1)
            self._socks.append(s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "UplinkCapture":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for s in self._socks:
            s.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for s in self._socks:
                try:
                    while True:
                        data, addr = s.recvfrom(65535)
                        if addr[2] != socket.PACKET_OUTGOING:
                            self.frames.append(data)
                except (socket.timeout, BlockingIOError):
                    pass
                except OSError:
                    return

    def ip_protocols(self) -> dict[int, int]:
        """IPv4 protocol number -> frames."""
        out: dict[int, int] = {}
        for f in self.frames:
            if len(f) > 23 and f[12:14] == b"\x08\x00":
                out[f[23]] = out.get(f[23], 0) + 1
        return out

    def udp_ports(self) -> set[int]:
        out = set()
        for f in self.frames:
            if len(f) > 37 and f[12:14] == b"\x08\x00" and f[23] == 17:
                ihl = (f[14] & 0x0F) * 4
                out.add(int.from_bytes(f[14 + ihl + 2:14 + ihl + 4], "big"))
        return out

    def contains(self, marker: bytes) -> bool:
        return any(marker in f for f in self.frames)


def have_real_vpp() -> str | None:
    """Why the real two-node tier cannot run, or None: it starts two private VPPs."""
    return real_vpp_reason(private=True)


def wait_until(pred, timeout: float = 10.0, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
