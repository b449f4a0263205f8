"""The pod's Linux side against real namespaces and veth pairs (root needed)."""
from __future__ import annotations

import os
import subprocess
import time
from socket import AF_INET, AF_INET6

import pytest
from pyroute2 import IPRoute

from vppagent.cni import linux
from vppagent.cni.linux import LinuxNetError, NetnsGone

from .conftest import unique_ifname

pytestmark = pytest.mark.netns

POD_IPS = ["10.244.1.5/32", "fd00:10::5/128"]
PEER4, PEER6 = "10.99.0.1", "fd00:99::1"


def _host_veth(host_ns: str, pod_ns: str, mtu: int = 1400) -> tuple[str, str, str]:
    """A veth whose host end lives in the test's host namespace; (host ifname, host MAC, pod MAC)."""
    host_if = unique_ifname()
    pod_mac = linux.in_netns(host_ns, lambda: linux.create_veth(host_if, pod_ns, "eth0", mtu))
    host_mac = linux.in_netns(host_ns, lambda: linux._link_mac(host_if))
    return host_if, host_mac, pod_mac


@pytest.fixture
def wired(make_netns):
    host_ns, pod_ns = make_netns(), make_netns()
    host_if, host_mac, pod_mac = _host_veth(host_ns, pod_ns)
    linux.configure_pod_side(pod_ns, "eth0", POD_IPS, host_mac, 1400)
    return host_ns, pod_ns, host_if, host_mac, pod_mac


def _read_pod(pod_ns: str) -> dict:
    def read() -> dict:
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname="eth0")[0]
            link = ipr.get_links(idx)[0]
            return {
                "mtu": link.get_attr("IFLA_MTU"),
                "up": bool(link["flags"] & 1),
                "mac": link.get_attr("IFLA_ADDRESS"),
                "addrs": {f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=idx)},
                "routes4": {(r["dst_len"], r.get_attr("RTA_DST"), r.get_attr("RTA_GATEWAY"), r["scope"])
                            for r in ipr.get_routes(family=AF_INET, table=254)},
                "routes6": {(r["dst_len"], r.get_attr("RTA_GATEWAY"))
                            for r in ipr.get_routes(family=AF_INET6, table=254)},
                "neigh": {(n.get_attr("NDA_DST"), n.get_attr("NDA_LLADDR"), n["state"])
                          for n in ipr.get_neighbours(ifindex=idx)},
                "sysctl": {k: open(f"/proc/sys/net/ipv6/conf/eth0/{k}").read().strip()
                           for k in ("accept_ra", "accept_dad")},
                "lo_up": bool(ipr.get_links(ipr.link_lookup(ifname="lo")[0])[0]["flags"] & 1),
            }
    return linux.in_netns(pod_ns, read)


def test_configured_pod_side_reads_back_from_inside_the_netns(wired):
    host_ns, pod_ns, host_if, host_mac, pod_mac = wired
    got = _read_pod(pod_ns)
    assert got["mtu"] == 1400 and got["up"] and got["lo_up"]
    assert got["mac"] == pod_mac == linux.pod_link_mac(pod_ns, "eth0")
    assert {"10.244.1.5/32", "fd00:10::5/128"} <= got["addrs"]
    assert (32, "169.254.1.1", None, 253) in got["routes4"]          # scope link
    assert (0, None, "169.254.1.1", 0) in got["routes4"]             # default via gateway
    assert (0, "fe80::1") in got["routes6"]
    assert ("169.254.1.1", host_mac, 0x80) in got["neigh"]           # NUD_PERMANENT
    assert ("fe80::1", host_mac, 0x80) in got["neigh"]
    assert got["sysctl"] == {"accept_ra": "0", "accept_dad": "0"}
    assert linux.check_pod_side(pod_ns, "eth0", POD_IPS, 1400) == []
    # The host end stayed in the host namespace, up, and did not appear in the pod's.
    assert linux.in_netns(host_ns, lambda: linux.host_link_exists(host_if))
    assert linux.pod_link_mac(pod_ns, host_if) is None


def test_calling_thread_keeps_its_namespace(make_netns):
    ns = make_netns()
    before = os.readlink("/proc/thread-self/ns/net")
    inside = linux.in_netns(ns, lambda: os.readlink("/proc/thread-self/ns/net"))
    assert inside != before
    assert inside == f"net:[{os.stat(ns).st_ino}]"
    assert os.readlink("/proc/thread-self/ns/net") == before


def test_pod_pings_a_peer_across_the_veth_v4_and_v6(wired):
    host_ns, pod_ns, host_if, host_mac, pod_mac = wired

    def host_side() -> None:
        # create_veth turns IPv6 off on the host end (VPP's, in the agent); this test routes on it.
        with open(f"/proc/sys/net/ipv6/conf/{host_if}/disable_ipv6", "w") as f:
            f.write("0")
        with open(f"/proc/sys/net/ipv6/conf/{host_if}/accept_dad", "w") as f:
            f.write("0")
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=host_if)[0]
            ipr.addr("add", index=idx, address=PEER4, prefixlen=32)
            ipr.addr("add", index=idx, address=PEER6, prefixlen=128, family=AF_INET6)
            ipr.route("add", dst="10.244.1.5/32", oif=idx)
            ipr.route("add", dst="fd00:10::5/128", oif=idx, family=AF_INET6)
            ipr.neigh("add", dst="10.244.1.5", lladdr=pod_mac, ifindex=idx, state="permanent")
            ipr.neigh("add", dst="fd00:10::5", lladdr=pod_mac, ifindex=idx, state="permanent",
                      family=AF_INET6)

    linux.in_netns(host_ns, host_side)
    name = os.path.basename(pod_ns)
    for peer in (PEER4, PEER6):
        r = subprocess.run(["ip", "netns", "exec", name, "ping", "-c", "1", "-W", "3", peer],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, f"ping {peer}: {r.stdout}{r.stderr}"
        assert "1 received" in r.stdout


def test_configure_twice_is_idempotent(wired):
    host_ns, pod_ns, host_if, host_mac, pod_mac = wired
    before = _read_pod(pod_ns)
    assert linux.configure_pod_side(pod_ns, "eth0", POD_IPS, host_mac, 1400) == pod_mac
    assert _read_pod(pod_ns) == before


def test_check_reports_each_difference(wired):
    host_ns, pod_ns, *_ = wired

    def damage() -> None:
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname="eth0")[0]
            ipr.addr("del", index=idx, address="fd00:10::5", prefixlen=128, family=AF_INET6)
            ipr.route("del", dst="::/0", gateway="fe80::1", oif=idx, family=AF_INET6)
            ipr.link("set", index=idx, mtu=1300)

    linux.in_netns(pod_ns, damage)
    diffs = linux.check_pod_side(pod_ns, "eth0", POD_IPS, 1400)
    assert any("MTU 1300" in d for d in diffs)
    assert any("fd00:10::5/128 missing" in d for d in diffs)
    assert any("IPv6 default route" in d for d in diffs)
    assert len(diffs) == 3, diffs

    # Removing the last IPv4 address makes the kernel flush the IPv4 routes and
    # neighbours of the link too: check must see all of it.
    def drop_v4() -> None:
        with IPRoute() as ipr:
            ipr.addr("del", index=ipr.link_lookup(ifname="eth0")[0], address="10.244.1.5", prefixlen=32)

    linux.in_netns(pod_ns, drop_v4)
    diffs = linux.check_pod_side(pod_ns, "eth0", POD_IPS, 1400)
    assert any("10.244.1.5/32 missing" in d for d in diffs)
    assert any("IPv4 default route" in d for d in diffs)
    assert any("neighbour for gateway 169.254.1.1" in d for d in diffs)

    def down() -> None:
        with IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="eth0")[0], state="down")

    linux.in_netns(pod_ns, down)
    assert any("not up" in d for d in linux.check_pod_side(pod_ns, "eth0", POD_IPS, 1400))
    assert linux.check_pod_side(pod_ns, "eth9", POD_IPS, 1400) == [f"link eth9 missing in netns {pod_ns}"]


def test_remove_is_idempotent_and_takes_the_host_end(wired):
    host_ns, pod_ns, host_if, *_ = wired
    linux.remove_pod_side(pod_ns, "eth0")
    linux.remove_pod_side(pod_ns, "eth0")
    assert linux.pod_link_mac(pod_ns, "eth0") is None
    assert not linux.in_netns(host_ns, lambda: linux.host_link_exists(host_if))
    linux.in_netns(host_ns, lambda: linux.delete_host_link(host_if))   # already gone: fine


def test_gone_netns_is_reported_as_netns_gone(make_netns, tmp_path):
    ns = make_netns()
    subprocess.run(["ip", "netns", "del", os.path.basename(ns)], check=True)
    with pytest.raises(NetnsGone) as e:
        linux.remove_pod_side(ns, "eth0")
    assert e.value.netns == ns
    with pytest.raises(NetnsGone):
        linux.check_pod_side(ns, "eth0", POD_IPS, 1400)
    with pytest.raises(NetnsGone):
        linux.create_veth(unique_ifname(), ns, "eth0", 1500)
    not_ns = tmp_path / "plain-file"
    not_ns.write_text("")
    with pytest.raises(NetnsGone, match="not a network namespace"):
        linux.in_netns(str(not_ns), lambda: None)
    with pytest.raises(NetnsGone):
        linux.in_netns("/proc/999999999/ns/net", lambda: None)


def _links(ns: str) -> set[str]:
    def names() -> set[str]:
        with IPRoute() as ipr:
            return {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
    return linux.in_netns(ns, names)


def test_name_collisions_leave_no_link_behind(make_netns):
    host_ns, pod_ns = make_netns(), make_netns()
    host_if, _, _ = _host_veth(host_ns, pod_ns)           # takes host_if here and eth0 there
    host_before, pod_before = _links(host_ns), _links(pod_ns)

    # Host name taken: the pod end must not be created either.
    other_pod = make_netns()
    with pytest.raises(LinuxNetError, match="already taken"):
        linux.in_netns(host_ns, lambda: linux.create_veth(host_if, other_pod, "eth0", 1500))
    assert _links(other_pod) == {"lo"}
    # Pod name taken: the host end must not be left.
    fresh = unique_ifname()
    with pytest.raises(LinuxNetError, match="already taken"):
        linux.in_netns(host_ns, lambda: linux.create_veth(fresh, pod_ns, "eth0", 1500))
    assert _links(host_ns) == host_before and _links(pod_ns) == pod_before
    # Names over 15 bytes are refused before anything is created.
    with pytest.raises(LinuxNetError, match="invalid interface name"):
        linux.in_netns(host_ns, lambda: linux.create_veth("x" * 16, other_pod, "eth0", 1500))
    assert _links(host_ns) == host_before and _links(other_pod) == {"lo"}


def test_bad_input_to_configure_changes_nothing(make_netns):
    host_ns, pod_ns = make_netns(), make_netns()
    _, host_mac, _ = _host_veth(host_ns, pod_ns)
    before = _read_pod(pod_ns)
    for bad in (dict(ips=["10.244.1.5/32", "not-an-ip"], gateway_mac=host_mac),
                dict(ips=POD_IPS, gateway_mac="zz:zz"),
                dict(ips=[], gateway_mac=host_mac)):
        with pytest.raises(LinuxNetError):
            linux.configure_pod_side(pod_ns, "eth0", mtu=1400, **bad)
    assert _read_pod(pod_ns) == before
    assert not before["up"]


def test_removing_the_pod_side_takes_the_host_end_too(make_netns):
    host_ns, pod_ns = make_netns(), make_netns()
    host_if, host_mac, pod_mac = _host_veth(host_ns, pod_ns, mtu=1500)
    assert linux.configure_pod_side(pod_ns, "eth0", ["10.99.1.2/24"], host_mac) == pod_mac
    assert linux.check_pod_side(pod_ns, "eth0", ["10.99.1.2/32"], 1500) == []
    linux.remove_pod_side(pod_ns, "eth0")
    linux.remove_pod_side(pod_ns, "eth0")  # idempotent
    assert not linux.in_netns(host_ns, lambda: linux.host_link_exists(host_if))


def test_proc_pid_netns_path_works_and_is_gone_with_its_process(make_netns):
    host_ns = make_netns()
    proc = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        path = f"/proc/{proc.pid}/ns/net"
        ours = os.readlink("/proc/self/ns/net")
        for _ in range(500):                  # until unshare has switched namespace
            if proc.poll() is None and os.readlink(path) != ours:
                break
            time.sleep(0.01)
        assert os.readlink(path) != ours
        host_if, host_mac, pod_mac = _host_veth(host_ns, path)
        linux.configure_pod_side(path, "eth0", POD_IPS, host_mac, 1400)
        assert linux.check_pod_side(path, "eth0", POD_IPS, 1400) == []
        assert linux.pod_link_mac(path, "eth0") == pod_mac
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(NetnsGone):
        linux.remove_pod_side(path, "eth0")


def test_l3_tun_link_gets_routes_without_neighbours(make_netns):
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("no /dev/net/tun")
    pod_ns = make_netns()
    subprocess.run(["ip", "netns", "exec", os.path.basename(pod_ns), "ip", "tuntap", "add",
                    "dev", "eth0", "mode", "tun"], check=True, capture_output=True)
    assert linux.configure_pod_side(pod_ns, "eth0", POD_IPS, "", 1400) == ""
    assert linux.check_pod_side(pod_ns, "eth0", POD_IPS, 1400) == []
    got = _read_pod(pod_ns)
    assert (0, None, "169.254.1.1", 0) in got["routes4"] and (0, "fe80::1") in got["routes6"]
    assert not {n for n in got["neigh"] if n[0] in ("169.254.1.1", "fe80::1")}
