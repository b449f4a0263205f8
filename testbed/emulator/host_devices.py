"""The Linux side of the emulator's taps, for tests that need a real pod interface.

VPP creates a tap's host end itself (a tun/tap device, moved into the
requested network namespace, renamed, with the requested MTU). The
emulator forwards no packets, but with ``host_devices`` on it creates that
device too, so the agent's pod-side configuration (addresses, routes,
neighbours) runs against a real kernel interface. Needs root.
"""
from __future__ import annotations

import os

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from vppagent.cni.linux import NetnsGone, in_netns


def _netns_path(ns: str) -> str | None:
    if not ns:
        return None
    return ns if ns.startswith("/") else f"/var/run/netns/{ns}"


def _in(ns: str, fn):  # type: ignore[no-untyped-def]
    path = _netns_path(ns)
    return fn() if path is None else in_netns(path, fn)


def create(name: str, *, tun: bool, netns: str, mtu: int) -> str | None:
    """Create the device; returns None, or VPP's failure reason (the create then fails)."""
    path = _netns_path(netns)
    if path is not None and not os.path.exists(path):
        return f"netns {netns} does not exist"

    def add() -> None:
        with IPRoute() as ipr:
            ipr.link("add", ifname=name, kind="tuntap", mode="tun" if tun else "tap")
            idx = ipr.link_lookup(ifname=name)[0]
            if mtu:
                ipr.link("set", index=idx, mtu=mtu)

    try:
        _in(netns, add)
    except (NetlinkError, OSError, IndexError) as e:
        return str(e)
    return None


def delete(name: str, *, netns: str) -> None:
    def drop() -> None:
        with IPRoute() as ipr:
            for idx in ipr.link_lookup(ifname=name):
                ipr.link("del", index=idx)

    try:
        _in(netns, drop)
    except (NetnsGone, NetlinkError, OSError):
        pass  # the namespace (and the device with it) is gone
