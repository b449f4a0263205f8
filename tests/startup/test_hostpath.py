"""Kernel side of takeover and restore, against the real kernel in namespaces."""
from __future__ import annotations

import socket
import subprocess

import pytest
from pyroute2 import IPRoute

from startup import hostpath, linkstate
from startup.hostpath import HostPathNames

pytestmark = pytest.mark.netns
NAMES = HostPathNames()


def _state(ifname: str) -> linkstate.InterfaceState:
    return linkstate.capture(ifname)


def test_capture_sees_addresses_and_routes_of_all_tables(topo):
    s = topo.run(_state, topo.uplink)
    addrs = {(a.address, a.prefixlen) for a in s.addresses}
    assert {(topo.node_ip, 24), ("10.78.0.1", 32), (topo.node_ip6, 64)} <= addrs
    gw_routes = {(r.table, r.dst, r.dst_len, r.gateway) for r in s.routes if not r.kernel_made}
    assert gw_routes == {
        (254, "", 0, topo.peer_ip), (100, "10.79.0.0", 24, topo.peer_ip),
        (254, "10.80.0.0", 16, topo.peer_ip), (254, "", 0, topo.peer_ip6),
        (254, "10.81.0.0", 16, ""), (254, "10.82.0.0", 16, topo.peer_ip), (200, "fd82::", 64, topo.peer_ip6)}
    multi = next(r for r in s.routes if r.dst == "10.81.0.0")
    assert {(h.gateway, h.dev, h.weight) for h in multi.multipath} == {
        (topo.peer_ip, topo.uplink, 1), ("10.77.0.3", topo.uplink, 0)}
    assert next(r for r in s.routes if r.dst == "10.82.0.0").prefsrc == "10.78.0.1"
    assert s.link.kind == "veth" and s.link.driver == "veth" and s.link.up


def test_move_then_restore_is_exact(topo):
    def go():
        with IPRoute() as ipr:
            before = linkstate.capture(topo.uplink, ipr)
            hostpath.prepare(ipr, before, NAMES)
            hostpath.move_to_host(ipr, before, NAMES)
            moved_up = linkstate.capture(topo.uplink, ipr)
            host = linkstate.capture(NAMES.host_if, ipr)
            hostpath.restore(ipr, before, NAMES)
            after = linkstate.capture(topo.uplink, ipr)
            left = hostpath.created_present(ipr, NAMES)
            return before, moved_up, host, after, left

    before, moved_up, host, after, left = topo.run(go)
    # During takeover the uplink has no IPv4 and no routes we made; the host side has them all.
    assert not [a for a in moved_up.addresses if a.family == socket.AF_INET]
    assert not [r for r in moved_up.routes if not r.kernel_made]
    assert moved_up.link.master != 0
    assert host.link.mac == before.link.mac and host.link.mtu == before.link.mtu
    assert {a.address for a in host.addresses} >= {topo.node_ip, "10.78.0.1", topo.node_ip6}
    assert {(r.table, r.dst, r.gateway) for r in host.routes if not r.kernel_made} == {
        (r.table, r.dst, r.gateway) for r in before.routes if not r.kernel_made}
    assert after.comparable() == before.comparable()
    assert left == []


def test_restore_puts_back_changed_mtu_and_down_state(topo):
    def go():
        with IPRoute() as ipr:
            before = linkstate.capture(topo.uplink, ipr)
            hostpath.prepare(ipr, before, NAMES)
            hostpath.move_to_host(ipr, before, NAMES)
            idx = before.link.ifindex
            ipr.link("set", index=idx, mtu=1400)
            ipr.link("set", index=idx, state="down")
            hostpath.restore(ipr, before, NAMES)
            return before, linkstate.capture(topo.uplink, ipr)

    before, after = topo.run(go)
    assert linkstate.diff(before, after) == []


def test_restore_removes_a_route_added_while_taken_over(topo):
    def go():
        with IPRoute() as ipr:
            before = linkstate.capture(topo.uplink, ipr)
            hostpath.prepare(ipr, before, NAMES)
            hostpath.move_to_host(ipr, before, NAMES)
            hostpath.restore(ipr, before, NAMES)
            # a stray route via the uplink, then restore again (idempotent, removes it)
            ipr.route("add", dst="10.98.0.0", dst_len=16, gateway=topo.peer_ip,
                      oif=before.link.ifindex, table=9)
            hostpath.restore(ipr, before, NAMES)
            return before, linkstate.capture(topo.uplink, ipr)

    before, after = topo.run(go)
    assert after.comparable() == before.comparable()


def test_node_keeps_connectivity_only_through_the_veth(topo):
    """Without VPP nothing joins host_if to the wire: a ping fails while taken over, works after."""
    def take():
        with IPRoute() as ipr:
            s = linkstate.capture(topo.uplink, ipr)
            hostpath.prepare(ipr, s, NAMES)
            hostpath.move_to_host(ipr, s, NAMES)
            return s

    s = topo.run(take)
    r = topo.node_exec("ping", "-c", "1", "-W", "1", topo.peer_ip, check=False)
    assert r.returncode != 0

    def back():
        with IPRoute() as ipr:
            hostpath.restore(ipr, s, NAMES)

    topo.run(back)
    topo.node_exec("ping", "-c", "1", "-W", "2", topo.peer_ip)


def _forward(a: str, b: str, stop) -> dict:
    """What VPP's af_packet + L2 cross-connect do, in userspace: copy frames between a and b."""
    import select

    counts = {a: 0, b: 0}
    socks = {}
    for name in (a, b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        s.bind((name, 0))
        s.setblocking(False)
        socks[name] = s
    other = {a: b, b: a}
    try:
        while not stop.is_set():
            ready, _, _ = select.select(list(socks.values()), [], [], 0.05)
            for s in ready:
                name = next(n for n, x in socks.items() if x is s)
                while True:
                    try:
                        frame, addr = s.recvfrom(65535)
                    except BlockingIOError:
                        break
                    if addr[2] == socket.PACKET_OUTGOING:
                        continue
                    counts[name] += 1
                    socks[other[name]].send(frame)
    finally:
        for s in socks.values():
            s.close()
    return counts


def test_quarantined_uplink_forwards_through_af_packet_only(topo):
    """With a frame copier in VPP's place the node pings and connects over TCP, without duplicates:
    the kernel no longer answers on the uplink itself."""
    import threading

    from startup import netns

    s = None

    def take():
        with IPRoute() as ipr:
            st = linkstate.capture(topo.uplink, ipr)
            hostpath.prepare(ipr, st, NAMES)
            hostpath.move_to_host(ipr, st, NAMES)
            return st

    s = topo.run(take)
    stop = threading.Event()
    box: dict = {}
    t = threading.Thread(target=lambda: box.update(
        netns.run_in(topo.node, _forward, topo.uplink, NAMES.vpp_if, stop)))
    t.start()
    try:
        r = topo.node_exec("ping", "-c", "3", "-i", "0.2", "-W", "2", topo.peer_ip, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "DUP!" not in r.stdout
        r6 = topo.node_exec("ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", topo.peer_ip6, check=False)
        assert r6.returncode == 0 and "DUP!" not in r6.stdout, r6.stdout + r6.stderr
        srv = subprocess.Popen(["ip", "netns", "exec", topo.peer, "python3", "-c",
                                "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                                f"s.bind(('{topo.peer_ip}',7777));s.listen();c,_=s.accept();c.sendall(b'hello');c.close()"])
        try:
            cli = ("import socket,time\nfor i in range(50):\n try:\n  s=socket.create_connection(('%s',7777),timeout=2);break\n"
                   " except ConnectionRefusedError: time.sleep(0.05)\nprint(s.recv(10).decode())" % topo.peer_ip)
            out = topo.node_exec("python3", "-c", cli, check=False)
            assert out.stdout.strip() == "hello", out.stderr
        finally:
            srv.kill()
            srv.wait()
    finally:
        stop.set()
        t.join()
        def back():
            with IPRoute() as ipr:
                hostpath.restore(ipr, s, NAMES)
        topo.run(back)
    assert box[topo.uplink] > 0 and box[NAMES.vpp_if] > 0
