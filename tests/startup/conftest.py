"""Node/peer network namespaces joined by a veth "uplink", torn down even on failure."""
from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from startup import ethtool, netns

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass(frozen=True)
class Topo:
    node: str
    peer: str
    uplink: str = "uplink0"
    peer_if: str = "peer0"
    node_ip: str = "10.77.0.1"
    peer_ip: str = "10.77.0.2"
    node_ip6: str = "fd77::1"
    peer_ip6: str = "fd77::2"

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in the node netns (a private thread)."""
        return netns.run_in(self.node, fn, *args, **kwargs)

    def node_exec(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.node, *cmd], check=check,
                              capture_output=True, text=True, timeout=timeout)

    def peer_exec(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.peer, *cmd], check=check,
                              capture_output=True, text=True, timeout=timeout)


def make_topo(with_default: bool = True) -> Topo:
    tag = secrets.token_hex(3)
    t = Topo(node=f"vpa-node-{tag}", peer=f"vpa-peer-{tag}")
    _ip("netns", "add", t.node)
    try:
        _ip("netns", "add", t.peer)
        n, p = ["-n", t.node], ["-n", t.peer]
        for ns in (t.node, t.peer):
            # Link-local addresses without DAD: captures taken right after link-up are then final.
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0",
                            "net.ipv6.conf.all.accept_dad=0"], check=True, capture_output=True)
        _ip(*n, "link", "add", t.uplink, "type", "veth", "peer", "name", t.peer_if, "netns", t.peer)
        for ns, ifn, ip4, ip6 in ((n, t.uplink, t.node_ip, t.node_ip6), (p, t.peer_if, t.peer_ip, t.peer_ip6)):
            _ip(*ns, "link", "set", "lo", "up")
            _ip(*ns, "addr", "add", f"{ip4}/24", "dev", ifn)
            _ip(*ns, "addr", "add", f"{ip6}/64", "dev", ifn, "nodad")
            _ip(*ns, "link", "set", ifn, "up")
        # The peer end stands for a wire: frames on it carry full checksums, no GSO.
        netns.run_in(t.peer, ethtool.disable_offloads, t.peer_if)
        _ip(*n, "addr", "add", "10.78.0.1/32", "dev", t.uplink)  # a second, secondary-free address
        _ip(*p, "addr", "add", "10.79.0.2/24", "dev", t.peer_if)
        if with_default:
            _ip(*n, "route", "add", "default", "via", t.peer_ip, "dev", t.uplink)
            _ip(*n, "-6", "route", "add", "default", "via", t.peer_ip6, "dev", t.uplink)
        _ip(*n, "route", "add", "10.79.0.0/24", "via", t.peer_ip, "dev", t.uplink, "table", "100")
        _ip(*n, "route", "add", "10.80.0.0/16", "via", t.peer_ip, "dev", t.uplink, "metric", "50")
        _ip(*n, "route", "add", "10.81.0.0/16", "nexthop", "via", t.peer_ip, "dev", t.uplink, "weight", "2",
            "nexthop", "via", "10.77.0.3", "dev", t.uplink)
        _ip(*n, "route", "add", "10.82.0.0/16", "via", t.peer_ip, "dev", t.uplink, "src", "10.78.0.1")
        _ip(*n, "-6", "route", "add", "fd82::/64", "via", t.peer_ip6, "dev", t.uplink, "table", "200")
        _ip(*p, "route", "add", "10.78.0.1/32", "via", t.node_ip)
        return t
    except BaseException:
        remove_topo(t)
        raise


def remove_topo(t: Topo) -> None:
    for ns in (t.node, t.peer):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")


@pytest.fixture
def topo():
    _need_root()
    t = make_topo()
    try:
        yield t
    finally:
        remove_topo(t)


@pytest.fixture
def topo_no_default():
    _need_root()
    t = make_topo(with_default=False)
    try:
        yield t
    finally:
        remove_topo(t)
