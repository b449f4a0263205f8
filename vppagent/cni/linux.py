"""The Linux side of pod interfaces, through netlink (pyroute2).

Owns: network namespaces, veth pairs, and the pod-side configuration (an
address, a link-local gateway reachable through a permanent neighbour entry,
routes, sysctls). Knows nothing about VPP; drivers combine this with the VPP
side. Every create has its delete, and deletes of what is already gone
succeed, so that clean-up can always be retried.
"""
from __future__ import annotations

import errno
import ipaddress
import logging
import os
from dataclasses import dataclass

from pyroute2 import IPRoute, NetlinkError, netns

log = logging.getLogger(__name__)

GATEWAY4 = ipaddress.IPv4Address("169.254.1.1")
GATEWAY6 = ipaddress.IPv6Address("fe80::1")


class LinuxNetError(RuntimeError):
    pass


def create_netns(name: str) -> None:
    if name in netns.listnetns():
        raise LinuxNetError(f"network namespace {name} already exists")
    netns.create(name)


def delete_netns(name: str) -> None:
    """Remove a namespace (and so the devices in it); a missing one is fine."""
    if name in netns.listnetns():
        netns.remove(name)


def netns_exists(name: str) -> bool:
    return name in netns.listnetns() or os.path.exists(name)


def create_veth(host_ifname: str, pod_netns: str, pod_ifname: str = "eth0", mtu: int = 1500) -> str:
    """Create a veth pair, move one end into ``pod_netns``; return the host end's MAC."""
    with IPRoute() as ipr:
        try:
            ipr.link("add", ifname=host_ifname, kind="veth", mtu=mtu,
                     peer={"ifname": pod_ifname, "net_ns_fd": pod_netns, "mtu": mtu})
        except NetlinkError as e:
            raise LinuxNetError(f"cannot create veth {host_ifname}<->{pod_netns}/{pod_ifname}: {e}") from e
        idx = ipr.link_lookup(ifname=host_ifname)[0]
        ipr.link("set", index=idx, state="up")
        return ipr.get_links(idx)[0].get_attr("IFLA_ADDRESS")


def delete_link(ifname: str, in_netns: str | None = None) -> None:
    with IPRoute(netns=in_netns) if in_netns else IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            return
        try:
            ipr.link("del", index=found[0])
        except NetlinkError as e:
            if e.code != errno.ENODEV:
                raise


def link_exists(ifname: str) -> bool:
    with IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=ifname))


@dataclass(frozen=True)
class PodSide:
    netns: str
    ifname: str
    addresses: tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...]
    gateway_mac: str  # the VPP interface's MAC, answering for the link-local gateway
    mtu: int = 1500


def configure_pod_side(spec: PodSide) -> str:
    """Address the pod end, route everything via the link-local gateway; return its MAC."""
    with IPRoute(netns=spec.netns) as ipr:
        lo = ipr.link_lookup(ifname="lo")[0]
        ipr.link("set", index=lo, state="up")
        idx = ipr.link_lookup(ifname=spec.ifname)
        if not idx:
            raise LinuxNetError(f"{spec.ifname} not found in netns {spec.netns}")
        idx = idx[0]
        ipr.link("set", index=idx, mtu=spec.mtu, state="up")
        for a in spec.addresses:
            # /32 and /128: every destination, even in the pod's own range,
            # goes through VPP, where policy and services are applied.
            full = 32 if a.version == 4 else 128
            ipr.addr("add", index=idx, address=str(a.ip), prefixlen=full)
            gw = GATEWAY4 if a.version == 4 else GATEWAY6
            family = 2 if a.version == 4 else 10
            ipr.neigh("add", dst=str(gw), lladdr=spec.gateway_mac, ifindex=idx, state="permanent",
                      family=family)
            if a.version == 4:
                ipr.route("add", dst=f"{gw}/32", oif=idx, scope="link")
            ipr.route("add", dst="default" if a.version == 4 else "::/0", gateway=str(gw), oif=idx,
                      family=family)
        return ipr.get_links(idx)[0].get_attr("IFLA_ADDRESS")
