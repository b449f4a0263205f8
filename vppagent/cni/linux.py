"""The Linux side of pod interfaces, through netlink (pyroute2).

Owns: veth pairs, and the pod-side configuration inside a pod's network
namespace (addresses, a link-local gateway reachable through a permanent
neighbour entry, routes, sysctls). Knows nothing about VPP; the pod interface
drivers combine this with the VPP side.

Work inside a namespace runs on a short-lived worker thread that setns()'d
into it, so the calling thread (and the rest of the agent) never changes
namespace. Netlink sockets and /proc/sys/net files opened on that thread
belong to the pod's namespace.

Every create has its delete; deletes of what is already gone succeed, so
clean-up can always be retried; a create that fails leaves nothing behind.
"""
from __future__ import annotations

import ctypes
import errno
import ipaddress
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from socket import AF_INET, AF_INET6
from typing import TypeVar

from pyroute2 import IPRoute, NetlinkError
from pyroute2.ethtool import Ethtool

from startup.ethtool import disable_offloads

log = logging.getLogger(__name__)

T = TypeVar("T")

GATEWAY4 = ipaddress.IPv4Address("169.254.1.1")
GATEWAY6 = ipaddress.IPv6Address("fe80::1")
NETNS_RUN_DIR = "/var/run/netns"

_CLONE_NEWNET = 0x40000000
_IFF_UP = 0x1
_IFF_NOARP = 0x80
_NUD_PERMANENT = 0x80
_RTNH_F_ONLINK = 0x4
_MAX_IFNAME = 15
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


class LinuxNetError(RuntimeError):
    """A Linux networking step failed; says which interface and namespace."""

    def __init__(self, message: str, *, ifname: str = "", netns: str = ""):
        super().__init__(message)
        self.ifname = ifname
        self.netns = netns


class NetnsGone(LinuxNetError):
    """The namespace path does not exist or is not a network namespace."""


# --- namespaces -----------------------------------------------------------

def resolve_netns(ns: str) -> str:
    """A CNI netns path as is; a bare name (``ip netns`` style) under /var/run/netns."""
    return ns if "/" in ns else f"{NETNS_RUN_DIR}/{ns}"


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):                       # Python >= 3.12
        os.setns(fd, _CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _open_netns(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise NetnsGone(f"network namespace {path} does not exist", netns=path) from None


def in_netns(netns_path: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` on a worker thread inside the namespace; return or raise what it does."""
    path = resolve_netns(netns_path)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            fd = _open_netns(path)
            try:
                _setns(fd)
            except OSError as e:
                if e.errno == errno.EINVAL:
                    raise NetnsGone(f"{path} is not a network namespace", netns=path) from None
                raise LinuxNetError(f"cannot enter network namespace {path}: {e}",
                                    netns=path) from e
            finally:
                os.close(fd)
            outcome["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = e

    # A fresh thread per call: a thread that entered a pod's namespace is never reused.
    worker = threading.Thread(target=run, name=f"netns:{path}", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


# --- helpers on the current thread's namespace ------------------------------

def _check_ifname(name: str) -> None:
    if (not isinstance(name, str) or not name or len(name.encode()) > _MAX_IFNAME
            or name in (".", "..") or any(c in name for c in "/:") or any(c.isspace() for c in name)):
        raise LinuxNetError(f"invalid interface name {name!r} (1-{_MAX_IFNAME} bytes, "
                            f"no '/', ':' or whitespace)", ifname=str(name))


def _check_mtu(mtu: int, ifname: str) -> None:
    if not isinstance(mtu, int) or not 68 <= mtu <= 65535:
        raise LinuxNetError(f"invalid MTU {mtu!r} for {ifname}", ifname=ifname)


def _lookup(ipr: IPRoute, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def _link_mac(ifname: str) -> str | None:
    with IPRoute() as ipr:
        idx = _lookup(ipr, ifname)
        return None if idx is None else ipr.get_links(idx)[0].get_attr("IFLA_ADDRESS")


def _delete_link(ifname: str) -> None:
    with IPRoute() as ipr:
        idx = _lookup(ipr, ifname)
        if idx is None:
            return
        try:
            ipr.link("del", index=idx)
        except NetlinkError as e:
            if e.code != errno.ENODEV:          # gone meanwhile (e.g. its veth peer was deleted)
                raise LinuxNetError(f"cannot delete {ifname}: {e}", ifname=ifname) from e


def delete_host_link(ifname: str) -> None:
    """Delete ``ifname`` in the caller's namespace; a missing link is fine."""
    _delete_link(ifname)


def host_link_exists(ifname: str) -> bool:
    with IPRoute() as ipr:
        return _lookup(ipr, ifname) is not None


def netns_id(path: str) -> str:
    """The identity of a network namespace file ("st_dev:st_ino"); "" if it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return f"{st.st_dev}:{st.st_ino}"


def own_netns_id() -> str:
    """The identity of the calling thread's network namespace."""
    return netns_id("/proc/thread-self/ns/net")


def host_links(pattern: "re.Pattern[str]") -> list[str]:
    """Names of the links in the caller's namespace that match ``pattern`` (fully)."""
    with IPRoute() as ipr:
        names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    return sorted(n for n in names if n and pattern.fullmatch(n))


def pod_link_mac(netns_path: str, ifname: str) -> str | None:
    return in_netns(netns_path, lambda: _link_mac(ifname))


# --- veth -----------------------------------------------------------------

def _ipv6_off(ifname: str) -> None:
    """No IPv6 on a host end: it carries pods' frames only, and the kernel's own link-local
    traffic on it (MLD reports, router solicitations) would only reach VPP to be punted."""
    if os.path.exists(conf := f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"):
        _write_sysctl(conf, "1", ifname, "")


def create_veth(host_ifname: str, netns_path: str, pod_ifname: str = "eth0", mtu: int = 1500) -> str:
    """Create a veth pair: host end here (up), pod end in the namespace; return the pod end's MAC.

    The kernel creates the pod end directly in its namespace under its final
    name, so a name taken on either side fails the whole create atomically.
    """
    _check_ifname(host_ifname)
    _check_ifname(pod_ifname)
    _check_mtu(mtu, host_ifname)
    path = resolve_netns(netns_path)
    fd = _open_netns(path)
    try:
        with IPRoute() as ipr:
            try:
                ipr.link("add", ifname=host_ifname, kind="veth", mtu=mtu,
                         peer={"ifname": pod_ifname, "net_ns_fd": fd, "mtu": mtu})
            except NetlinkError as e:
                why = "a name is already taken" if e.code == errno.EEXIST else str(e)
                raise LinuxNetError(f"cannot create veth {host_ifname} <-> {path}/{pod_ifname}: {why}",
                                    ifname=host_ifname, netns=path) from e
            try:
                idx = _lookup(ipr, host_ifname)
                if idx is None:
                    raise LinuxNetError(f"veth {host_ifname} vanished after creation",
                                        ifname=host_ifname, netns=path)
                _ipv6_off(host_ifname)
                ipr.link("set", index=idx, state="up")
                mac = in_netns(path, lambda: _link_mac(pod_ifname))
                if mac is None:
                    raise LinuxNetError(f"pod end {pod_ifname} not found in {path} after creation",
                                        ifname=pod_ifname, netns=path)
            except BaseException:
                _delete_link(host_ifname)       # deleting one end removes the pair
                raise
    finally:
        os.close(fd)
    log.debug("veth created", extra={"host_ifname": host_ifname, "netns": path,
                                     "pod_ifname": pod_ifname, "pod_mac": mac})
    return mac


def create_spare_veth(host_ifname: str, spare_ifname: str, mtu: int, offloads: bool = False) -> None:
    """Create a veth pair with both ends here and up: the host end for VPP, the other a macvlan parent.

    IPv6 is off on both first: they carry pods' frames only, never the node's own. The
    parent's checksum offloads are off, for its macvlans (see ``_CHECKSUM_FEATURES``).
    """
    _check_ifname(host_ifname)
    _check_ifname(spare_ifname)
    _check_mtu(mtu, host_ifname)
    with IPRoute() as ipr:
        try:
            ipr.link("add", ifname=host_ifname, kind="veth", mtu=mtu, peer={"ifname": spare_ifname, "mtu": mtu})
        except NetlinkError as e:
            why = "a name is already taken" if e.code == errno.EEXIST else str(e)
            raise LinuxNetError(f"cannot create veth {host_ifname} <-> {spare_ifname}: {why}",
                                ifname=host_ifname) from e
        try:
            for name in (host_ifname, spare_ifname):
                idx = _lookup(ipr, name)
                if idx is None:
                    raise LinuxNetError(f"veth {name} vanished after creation", ifname=name)
                _ipv6_off(name)
                if name == spare_ifname:
                    _offloads_for_vpp(name, offloads)  # a macvlan takes its offloads from its parent
                ipr.link("set", index=idx, state="up")
        except BaseException:
            _delete_link(host_ifname)
            raise


def create_macvlan(parent_ifname: str, netns_path: str, pod_ifname: str, mtu: int) -> str:
    """Create the pod's interface in its namespace: a macvlan on ``parent_ifname`` (here); returns its MAC.

    One netlink request makes it directly in the pod, under its final name
    (about 2 ms); moving an existing link into a namespace waits for RCU
    (15-30 ms measured). A name taken in the pod fails the request whole.
    """
    _check_ifname(pod_ifname)
    _check_mtu(mtu, pod_ifname)
    path = resolve_netns(netns_path)
    fd = _open_netns(path)
    try:
        with IPRoute() as ipr:
            parent = _lookup(ipr, parent_ifname)
            if parent is None:
                raise LinuxNetError(f"macvlan parent {parent_ifname} is gone", ifname=parent_ifname)
            try:
                ipr.link("add", ifname=pod_ifname, kind="macvlan", link=parent, macvlan_mode="private",
                         mtu=mtu, net_ns_fd=fd)
            except NetlinkError as e:
                why = f"{pod_ifname} already exists there" if e.code == errno.EEXIST else str(e)
                raise LinuxNetError(f"cannot create {pod_ifname} in {path} on {parent_ifname}: {why}",
                                    ifname=pod_ifname, netns=path) from e
        mac = in_netns(path, lambda: _link_mac(pod_ifname))
        if mac is None:
            raise LinuxNetError(f"{pod_ifname} not found in {path} after creation", ifname=pod_ifname, netns=path)
        return mac
    finally:
        os.close(fd)


# --- the pod side ---------------------------------------------------------


def _parse_ips(ips: Sequence[str], ifname: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    out = []
    for ip in ips:
        try:
            out.append(ipaddress.ip_interface(ip).ip)
        except (TypeError, ValueError):
            raise LinuxNetError(f"invalid pod address {ip!r} for {ifname}", ifname=ifname) from None
    return out


def _write_sysctl(path: str, value: str, ifname: str, ns: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise LinuxNetError(f"cannot set {path}={value} in {ns}: {e}", ifname=ifname, netns=ns) from e


# Offloads a pod's veth or macvlan has off unless pod_offloads: the kernel would leave TCP/UDP/SCTP checksums
# partial (and hand over 64k GSO frames), af_packet passes such frames to VPP as they are, and
# VPP 26.06 does not complete them before NAT (cnat), tunnels or WireGuard: receivers drop every
# segment (TcpInCsumErrors). Turned off with startup.ethtool.disable_offloads, as node bring-up
# does for its own veth; these are the checksum features that shows (``checksum_offloads``).
_CHECKSUM_FEATURES = ("tx-checksum-ip-generic", "tx-checksum-ipv4", "tx-checksum-ipv6", "tx-checksum-sctp")


# With the pods' offloads kept (config pod_offloads), what VPP 26.06 still cannot take: af_packet
# reads the kernel's UDP GSO type as TCP GSO, and has no use for fraglist or tunnel GSO frames
# (docs/upstream-vpp-af-packet-offloads.md); SCTP's checksum is a CRC32c VPP has no offload flag
# for, so a partial one would leave the node unfinished. TX checksum, TSO and GSO of TCP stay on.
_GSO_VPP_CANNOT_TAKE = ("tx-checksum-sctp", "tx-udp-segmentation", "tx-gso-list", "tx-udp_tnl-segmentation",
                        "tx-udp_tnl-csum-segmentation", "tx-gre-segmentation", "tx-gre-csum-segmentation",
                        "tx-ipxip4-segmentation", "tx-ipxip6-segmentation", "tx-sctp-segmentation")


def _gso_vpp_cannot_take_off(ifname: str) -> None:
    """Runs in the link's namespace. Only features the device lets us change are touched."""
    e = Ethtool()
    try:
        feats = e.get_features(ifname)
        changed = False
        for name in _GSO_VPP_CANNOT_TAKE:
            f = feats.features.get(name)
            if f is not None and f.enable and f.available:
                f.enable = False
                changed = True
        if changed:
            e.set_features(ifname, feats)
    finally:
        e.close()


def _offloads_for_vpp(ifname: str, keep: bool) -> None:
    """``keep``: the pod keeps TCP's TX checksum/TSO/GSO (VPP takes them as offload metadata);
    otherwise every offload whose frame VPP could forward wrong is off."""
    if keep:
        _gso_vpp_cannot_take_off(ifname)
    else:
        _offloads_off(ifname)


def _offloads_off(ifname: str) -> None:
    """Runs in the link's namespace (ethtool ioctls answer for the caller's). A macvlan cannot
    change its checksum offload (it follows its parent's): that refusal is fine."""
    try:
        disable_offloads(ifname)
    except OSError as e:
        if e.errno != errno.EOPNOTSUPP:
            raise


def _configure(path: str, ifname: str, addrs: list, gateway_mac: str, mtu: int,
               gw4: ipaddress.IPv4Address, gw6: ipaddress.IPv6Address, offloads: bool = False) -> str:
    """Runs inside the pod namespace. Uses replace everywhere, so it is idempotent."""
    has4 = any(a.version == 4 for a in addrs)
    has6 = any(a.version == 6 for a in addrs)
    step = "start"
    try:
        with IPRoute() as ipr:
            step = "lo up"
            lo = _lookup(ipr, "lo")
            if lo is not None:
                ipr.link("set", index=lo, state="up")
            idx = _lookup(ipr, ifname)
            if idx is None:
                raise LinuxNetError(f"{ifname} not found in netns {path}", ifname=ifname, netns=path)
            # Before the link comes up, so no address is ever tentative and no RA is heard:
            # the pod's routes are ours alone.
            conf6 = f"/proc/sys/net/ipv6/conf/{ifname}"
            if os.path.isdir(conf6):
                for knob in ("accept_ra", "accept_dad"):
                    _write_sysctl(f"{conf6}/{knob}", "0", ifname, path)
            elif has6:
                raise LinuxNetError(f"IPv6 is disabled in {path} but {ifname} needs an IPv6 address",
                                    ifname=ifname, netns=path)
            if gateway_mac:
                step = "offloads"
                _offloads_for_vpp(ifname, offloads)
            step = "link up"
            ipr.link("set", index=idx, mtu=mtu, state="up")
            for a in addrs:
                step = f"address {a}"
                # Full-length prefixes: every destination, even in the pod's own
                # range, goes through VPP, where policy and services are applied.
                ipr.addr("replace", index=idx, address=str(a), prefixlen=a.max_prefixlen,
                         family=AF_INET if a.version == 4 else AF_INET6)
            # An L3 link (tun: no link-layer address) needs no neighbour for its gateway.
            l2 = bool(gateway_mac) and not ipr.get_links(idx)[0]["flags"] & _IFF_NOARP
            if has4:
                if l2:
                    step = f"neighbour {gw4}"
                    ipr.neigh("replace", dst=str(gw4), lladdr=gateway_mac, ifindex=idx,
                              state="permanent", family=AF_INET)
                step = f"route {gw4}/32"
                ipr.route("replace", dst=f"{gw4}/32", oif=idx, scope="link", family=AF_INET)
                step = "IPv4 default route"
                ipr.route("replace", dst="0.0.0.0/0", gateway=str(gw4), oif=idx,
                          flags=_RTNH_F_ONLINK, family=AF_INET)
            if has6:
                if l2:
                    step = f"neighbour {gw6}"
                    ipr.neigh("replace", dst=str(gw6), lladdr=gateway_mac, ifindex=idx,
                              state="permanent", family=AF_INET6)
                step = "IPv6 default route"
                ipr.route("replace", dst="::/0", gateway=str(gw6), oif=idx, family=AF_INET6)
            return ipr.get_links(idx)[0].get_attr("IFLA_ADDRESS") or ""   # "" for a tun
    except NetlinkError as e:
        raise LinuxNetError(f"configuring {ifname} in {path} failed at {step}: {e}",
                            ifname=ifname, netns=path) from e


def configure_pod_side(netns_path: str, ifname: str = "eth0", ips: Sequence[str] = (),
                       gateway_mac: str = "", mtu: int = 1500,
                       gateway4: str = str(GATEWAY4), gateway6: str = str(GATEWAY6), offloads: bool = False) -> str:
    """Configure the pod end; return its MAC. Idempotent. Inputs are checked before any change.

    ``offloads``: keep the pod's TCP checksum and segmentation offloads (``_offloads_for_vpp``).

    ``gateway_mac`` "" is for L3 links (tun): no neighbour entries are made.
    """
    path = resolve_netns(netns_path)
    _check_ifname(ifname)
    _check_mtu(mtu, ifname)
    addrs = _parse_ips(ips, ifname)
    if not addrs:
        raise LinuxNetError(f"no address given for {ifname}", ifname=ifname, netns=path)
    if not isinstance(gateway_mac, str) or (gateway_mac and not _MAC.match(gateway_mac)):
        raise LinuxNetError(f"invalid gateway MAC {gateway_mac!r}", ifname=ifname, netns=path)
    try:
        gw4 = ipaddress.IPv4Address(gateway4)
        gw6 = ipaddress.IPv6Address(gateway6)
    except ValueError as e:
        raise LinuxNetError(f"invalid gateway address: {e}", ifname=ifname, netns=path) from None
    mac = in_netns(path, lambda: _configure(path, ifname, addrs, gateway_mac, mtu, gw4, gw6, offloads))
    log.debug("pod side configured", extra={"netns": path, "ifname": ifname,
                                            "ips": [str(a) for a in addrs], "mtu": mtu})
    return mac


def checksum_offloads(netns_path: str, ifname: str) -> dict[str, bool]:
    """The pod interface's checksum offloads that the pod driver turns off, as they are now."""
    def read() -> dict[str, bool]:
        e = Ethtool()
        try:
            feats = e.get_features(ifname).features
        finally:
            e.close()
        return {n: feats[n].enable for n in _CHECKSUM_FEATURES if n in feats and (feats[n].available or feats[n].enable)}

    return in_netns(resolve_netns(netns_path), read)


def _check(path: str, ifname: str, addrs: list, mtu: int,
           gw4: ipaddress.IPv4Address, gw6: ipaddress.IPv6Address) -> list[str]:
    diffs: list[str] = []
    with IPRoute() as ipr:
        idx = _lookup(ipr, ifname)
        if idx is None:
            return [f"link {ifname} missing in netns {path}"]
        link = ipr.get_links(idx)[0]
        if not link["flags"] & _IFF_UP:
            diffs.append(f"link {ifname} is not up")
        if link.get_attr("IFLA_MTU") != mtu:
            diffs.append(f"link {ifname} has MTU {link.get_attr('IFLA_MTU')}, want {mtu}")
        have = {(ipaddress.ip_address(a.get_attr("IFA_ADDRESS")), a["prefixlen"])
                for a in ipr.get_addr(index=idx)}
        for a in addrs:
            if (a, a.max_prefixlen) not in have:
                diffs.append(f"address {a}/{a.max_prefixlen} missing on {ifname}")
        for family, gw, label in ((AF_INET, gw4, "IPv4"), (AF_INET6, gw6, "IPv6")):
            if not any(a.version == (4 if family == AF_INET else 6) for a in addrs):
                continue
            default = [r for r in ipr.get_routes(family=family, table=254)
                       if r["dst_len"] == 0 and r.get_attr("RTA_OIF") == idx
                       and r.get_attr("RTA_GATEWAY") is not None
                       and ipaddress.ip_address(r.get_attr("RTA_GATEWAY")) == gw]
            if not default:
                diffs.append(f"{label} default route via {gw} dev {ifname} missing")
            if link["flags"] & _IFF_NOARP or link.get_attr("IFLA_ADDRESS") is None:
                continue                        # L3 link: no gateway neighbour to have
            neigh = [n for n in ipr.get_neighbours(family=family, ifindex=idx)
                     if n.get_attr("NDA_DST") is not None
                     and ipaddress.ip_address(n.get_attr("NDA_DST")) == gw
                     and n["state"] & _NUD_PERMANENT]
            if not neigh:
                diffs.append(f"permanent neighbour for gateway {gw} on {ifname} missing")
    return diffs


def check_pod_side(netns_path: str, ifname: str, ips: Sequence[str], mtu: int,
                   gateway4: str = str(GATEWAY4), gateway6: str = str(GATEWAY6)) -> list[str]:
    """The differences from what configure_pod_side sets up (empty: all there).

    Raises NetnsGone when the namespace itself is gone.
    """
    path = resolve_netns(netns_path)
    addrs = _parse_ips(ips, ifname)
    gw4, gw6 = ipaddress.IPv4Address(gateway4), ipaddress.IPv6Address(gateway6)
    return in_netns(path, lambda: _check(path, ifname, addrs, mtu, gw4, gw6))


def remove_pod_side(netns_path: str, ifname: str) -> None:
    """Delete the pod end (and so its veth peer); idempotent; NetnsGone if the netns is gone."""
    path = resolve_netns(netns_path)
    in_netns(path, lambda: _delete_link(ifname))
