"""Pods without an agent: a network namespace whose eth0 is a veth attached to VPP with af_packet.

Owns the topology the real-VPP tiers below the agent build by hand (the
services, ksvc and kpol traffic tests, the demo): a named netns, the veth,
the af_packet interface (unnumbered to a loopback), the pod side configured
as the pod driver configures it (address, link-local gateway, static
neighbour), VPP's neighbour and /32 route back to the pod. Every step
registers its undo on the caller's ``ExitStack``, so a failure half-way
leaves nothing behind.
"""
from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass

from pyroute2 import netns as pr_netns

from vppagent.cni import linux
from vppagent.vpp import af_packet, interfaces, neighbors, routes
from vppagent.vpp.client import VppClient

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

# One TCP exchange between two pods: the server answers "pong:<data>:<peer>" once, the
# client (argv: server address) prints the answer. ``python -c`` scripts, run in a netns.
TCP_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7777)); s.listen(1); s.settimeout(20)
c, peer = s.accept(); data = c.recv(100); c.sendall(b"pong:" + data + b":" + peer[0].encode()); c.close()
"""
TCP_CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], 7777), timeout=10); c.sendall(b"ping"); print(c.recv(100).decode())
"""


@dataclass(frozen=True)
class NetPod:
    netns: str                      # the namespace's name (``ip netns exec <netns>``)
    host_if: str                    # the veth end VPP holds
    sw_if_index: int
    mac: str                        # the pod's eth0
    ips: tuple[IPInterface, ...]


def netns(stack: ExitStack, name: str) -> str:
    """A new named network namespace, removed by ``stack``; refuses one that exists."""
    if name in pr_netns.listnetns():
        raise RuntimeError(f"network namespace {name} already exists")
    pr_netns.create(name)
    stack.callback(_remove_netns, name)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    return name


def _remove_netns(name: str) -> None:
    if name in pr_netns.listnetns():
        pr_netns.remove(name)


def veth(stack: ExitStack, host_if: str, ns: str, *, mtu: int = 1500) -> None:
    """A veth pair: ``host_if`` here, eth0 in ``ns``; removed by ``stack``."""
    linux.create_veth(host_if, linux.resolve_netns(ns), mtu=mtu)
    stack.callback(_delete_host_link, host_if)


def _delete_host_link(ifname: str) -> None:
    subprocess.run(["ip", "link", "del", ifname], capture_output=True, check=False)


def attach(vpp: VppClient, stack: ExitStack, host_if: str, *,
           flags: af_packet.Flags = af_packet.Flags.QDISC_BYPASS, rings: dict | None = None) -> int:
    """``host_if`` as an af_packet interface, admin up; deleted by ``stack``. ``rings``: the
    ``af_packet.create`` ring arguments (flags included), e.g. the agent's ``pool.Rings.create_args``."""
    sw = af_packet.create(vpp, host_if, **(rings or {"flags": flags}))
    stack.callback(af_packet.delete, vpp, host_if)
    interfaces.set_admin_up(vpp, sw)
    return sw


def pod(vpp: VppClient, stack: ExitStack, ns_name: str, host_if: str, ips: Sequence[str | IPInterface], *,
        loopback: int, flags: af_packet.Flags = af_packet.Flags.QDISC_BYPASS | af_packet.Flags.CKSUM_GSO,
        pod_offloads: bool = True, tag: str | None = None, mtu: int = 1500, rings: dict | None = None) -> NetPod:
    """A pod in netns ``ns_name`` (created here) reached through ``host_if``.

    ``flags``: the af_packet flags; CKSUM_GSO (the pod driver's choice) carries
    the kernel's partial checksums and GSO as offload metadata. Without it the
    pod's TX checksum offloads must be off (``pod_offloads=False``), or VPP
    forwards TCP with bad checksums. ``pod_offloads`` as the agent's config key:
    the pod driver's own choice of what to keep (``linux.configure_pod_side``). ``rings``: ring arguments instead of ``flags`` alone.
    """
    addrs = tuple(ipaddress.ip_interface(ip if "/" in str(ip) else f"{ip}/{ipaddress.ip_address(ip).max_prefixlen}")
                  for ip in ips)
    netns(stack, ns_name)
    veth(stack, host_if, ns_name, mtu=mtu)
    sw = attach(vpp, stack, host_if, flags=flags, rings=rings)
    if tag:
        interfaces.set_tag(vpp, sw, tag)
    # Borrowing the loopback's address enables IP on the interface without an address per pod.
    interfaces.set_l3(vpp, sw, borrow_from=loopback)
    mac = linux.configure_pod_side(ns_name, "eth0", [str(a) for a in addrs], interfaces.get(vpp, sw).mac, mtu,
                                   offloads=pod_offloads)
    for a in addrs:
        nb = neighbors.Neighbor(sw, a.ip, mac)
        neighbors.add(vpp, nb)
        stack.callback(neighbors.delete, vpp, nb)
        route = routes.Route.of(ipaddress.ip_network(f"{a.ip}/{a.max_prefixlen}"),
                                routes.Path(sw_if_index=sw, next_hop=a.ip))
        routes.add(vpp, route)
        stack.callback(routes.delete, vpp, route)
    return NetPod(ns_name, host_if, sw, mac, addrs)


def exec_in(ns: str, *cmd: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """``cmd`` in namespace ``ns``, output captured."""
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout)


__all__ = ["TCP_CLIENT", "TCP_SERVER", "NetPod", "attach", "exec_in", "netns", "pod", "veth"]
