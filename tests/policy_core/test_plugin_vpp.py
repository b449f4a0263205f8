"""The kpol plugin in a real VPP: built out of tree against the installed VPP, loaded into
a private VPP, driven through its binary API, and enforcing policy on real TCP traffic.

Needs VPPAGENT_VPP_BIN and root, and the plugin (``testbed.plugins``: built with cmake
against the VPP's prefix, or VPPAGENT_KPOL_PLUGIN_DIR). Topology for the traffic test: three pods in their own namespaces,
each a veth attached to VPP with af_packet (client 10.98.1.2, server 10.98.1.3,
other 10.98.1.4), all removed in teardown, on failure too.
"""
from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed import netpods, plugins, targets, threads
from vppagent.vpp import interfaces
from vppagent.vpp.client import VppClient

pytestmark = [pytest.mark.real_vpp]

KIND_ADDR, KIND_NET, KIND_ADDR_PORT = 1, 2, 3
ITEM_RULE, ITEM_PEER, ITEM_PORTS, ITEM_PEER_PORT = 0, 1, 2, 3
# VNET_API_ERROR_* the handlers answer with (vnet/error.h)
NO_SUCH_ENTRY, INVALID_VALUE, INVALID_VALUE_2, ENTRY_EXISTS, IN_USE, INVALID_VALUE_3 = (
    -6, -7, -8, -116, -147, -150)


@pytest.fixture(scope="module")
def plugin() -> plugins.Built:
    return plugins.plugin("kpol")


@pytest.fixture(scope="module")
def kpol_api(plugin: plugins.Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """VPP's API definitions with kpol.api beside them."""
    assert plugin.api_json is not None, f"no kpol.api.json next to {plugin.so_dir}"
    defs = tmp_path_factory.mktemp("kpol-api")
    for sub in Path(targets.api_dir()).iterdir():  # copies: the loader does not follow directory symlinks
        if sub.is_dir():
            shutil.copytree(sub, defs / sub.name)
    (defs / "kpol").mkdir()
    shutil.copy(plugin.api_json, defs / "kpol" / "kpol.api.json")
    return defs


@pytest.fixture(scope="module")
def vpp(plugin: plugins.Built, kpol_api: Path):
    """A private VPP that loads the plugin from the build dir, and a client that knows kpol.api."""
    with ExitStack() as stack:
        yield targets.private_vpp(stack, plugin_dirs=(plugin.so_dir,), client={"api_dir": str(kpol_api)}).vpp


@pytest.fixture(scope="module")
def vpp_workers(plugin: plugins.Built, kpol_api: Path):
    """The same with a worker thread beside the main thread: two threads that poll pod interfaces
    (this machine's 2 cores do not start ``workers 2``)."""
    with ExitStack() as stack:
        yield targets.private_vpp(stack, plugin_dirs=(plugin.so_dir,), workers=1,
                                  client={"api_dir": str(kpol_api)}).vpp


def cli(vpp: VppClient, cmd: str) -> str:
    return vpp.call("cli_inband", cmd=cmd).reply


def member(addr: str, plen: int = 0, exclude: bool = False, proto: int = 0, port: int = 0) -> dict:
    return {"addr": ipaddress.ip_address(addr), "plen": plen, "exclude": exclude, "proto": proto,
            "port": port}


def rule(direction: int, *, any_peer: bool = False, peers=(), ports=(), peer_ports=()) -> list[dict]:
    items = [{"type": ITEM_RULE, "dir": direction, "any_peer": any_peer}]
    items += [{"type": ITEM_PEER, "dir": direction, "set_id": s} for s in peers]
    items += [{"type": ITEM_PORTS, "dir": direction, "proto": p, "lo": lo, "hi": hi} for p, lo, hi in ports]
    items += [{"type": ITEM_PEER_PORT, "dir": direction, "set_id": s} for s in peer_ports]
    return items


def counted(fields: dict) -> dict:
    """The codec wants a variable array's count field set with the array."""
    for arr, count in (("members", "n_members"), ("items", "n_items")):
        if arr in fields:
            fields[count] = len(fields[arr])
    return fields


def call(vpp: VppClient, name: str, check: bool = True, **fields):
    return vpp.call(name, check=check, **counted(fields))


def retval(vpp: VppClient, name: str, **fields) -> int:
    return call(vpp, name, check=False, **fields).retval


# ---- the plugin loads and its API answers ----

def test_plugin_is_loaded_and_its_messages_are_known(vpp: VppClient):
    assert "kpol_plugin.so" in cli(vpp, "show plugins")
    stats = vpp.call("kpol_flow_stats")
    assert stats.retval == 0 and stats.flows == 0
    assert "kpol-ip4-in" in cli(vpp, "show node kpol-ip4-in")


def test_ipsets_round_trip_through_dump(vpp: VppClient):
    assert retval(vpp, "kpol_ipset_add", set_id=10, kind=KIND_ADDR) == 0
    assert retval(vpp, "kpol_ipset_add", set_id=11, kind=KIND_NET) == 0
    r = call(vpp, "kpol_ipset_members_add_del", set_id=10, is_add=True,
                 members=[member("10.0.0.1"), member("fd00::1")])
    assert r.retval == 0 and r.failed_at == 0xFFFFFFFF
    call(vpp, "kpol_ipset_members_add_del", set_id=11, is_add=True,
             members=[member("10.0.0.0", 8), member("10.2.0.0", 16, exclude=True)])
    (d10,) = vpp.dump("kpol_ipset_dump", set_id=10)
    assert d10.kind == KIND_ADDR and {str(m.addr) for m in d10.members} == {"10.0.0.1", "fd00::1"}
    (d11,) = vpp.dump("kpol_ipset_dump", set_id=11)
    assert {(str(m.addr), m.plen, m.exclude) for m in d11.members} == {("10.0.0.0", 8, False),
                                                                       ("10.2.0.0", 16, True)}
    assert {d.set_id for d in vpp.dump("kpol_ipset_dump", set_id=0xFFFFFFFF)} >= {10, 11}
    for s in (10, 11):
        assert retval(vpp, "kpol_ipset_del", set_id=s) == 0
    assert vpp.dump("kpol_ipset_dump", set_id=10) == []


def test_bad_ipset_requests_are_rejected_and_change_nothing(vpp: VppClient):
    assert retval(vpp, "kpol_ipset_add", set_id=20, kind=9) == INVALID_VALUE
    assert retval(vpp, "kpol_ipset_add", set_id=1 << 20, kind=KIND_ADDR) == INVALID_VALUE_2
    assert retval(vpp, "kpol_ipset_del", set_id=20) == NO_SUCH_ENTRY
    assert retval(vpp, "kpol_ipset_members_add_del", set_id=20, is_add=True,
                  members=[member("10.0.0.1")]) == NO_SUCH_ENTRY
    vpp.call("kpol_ipset_add", set_id=20, kind=KIND_NET)
    call(vpp, "kpol_ipset_members_add_del", set_id=20, is_add=True, members=[member("10.0.0.0", 8)])
    # a batch with one bad member (host bits set) adds none of them
    r = call(vpp, "kpol_ipset_members_add_del", check=False, set_id=20, is_add=True,
                 members=[member("10.9.0.0", 16), member("10.0.0.1", 8)])
    assert r.retval == INVALID_VALUE and r.failed_at == 1
    r = call(vpp, "kpol_ipset_members_add_del", check=False, set_id=20, is_add=True,
                 members=[member("10.9.0.0", 16), member("10.0.0.0", 8)])
    assert r.retval == ENTRY_EXISTS and r.failed_at == 1
    (d,) = vpp.dump("kpol_ipset_dump", set_id=20)
    assert [(str(m.addr), m.plen) for m in d.members] == [("10.0.0.0", 8)]
    vpp.call("kpol_ipset_del", set_id=20)


def test_a_message_claiming_more_members_than_it_carries_is_rejected(vpp: VppClient):
    """A count larger than the message is never read past: VPP's dispatcher drops such a
    message unanswered (its calc_size check), and the handler checks the length again."""
    vpp.call("kpol_ipset_add", set_id=30, kind=KIND_ADDR)
    # private client calls: there is no public way to send a lying message
    p, out = vpp._start("kpol_ipset_members_add_del",
                        counted({"set_id": 30, "is_add": True, "members": [member("10.0.0.1")]}), None)
    raw = bytearray(out[0])
    n_members_at = 2 + 4 + 4 + 4 + 1  # msg id, client index, context, set_id, is_add
    assert raw[n_members_at:n_members_at + 4] == (1).to_bytes(4, "big")
    raw[n_members_at:n_members_at + 4] = (100000).to_bytes(4, "big")
    vpp._transport.send([bytes(raw)])
    if p.done.wait(2.0):
        assert vpp._decode_reply(p, False).retval == INVALID_VALUE
    else:
        vpp._pending.pop(p.context, None)  # dropped unanswered by the dispatcher
    (d,) = vpp.dump("kpol_ipset_dump", set_id=30)
    assert d.members == []
    assert "kpol_plugin.so" in cli(vpp, "show plugins")  # VPP is still there
    vpp.call("kpol_ipset_del", set_id=30)


def test_policies_round_trip_and_malformed_rules_are_rejected(vpp: VppClient):
    vpp.call("kpol_ipset_add", set_id=40, kind=KIND_ADDR)
    vpp.call("kpol_ipset_add", set_id=41, kind=KIND_ADDR_PORT)
    items = (rule(0, peers=[40], ports=[(6, 80, 80), (17, 53, 53)]) + rule(0, any_peer=True)
             + rule(1, peer_ports=[41]))
    call(vpp, "kpol_policy_set", policy_id=7, ingress_isolated=True, egress_isolated=True, items=items)
    (d,) = vpp.dump("kpol_policy_dump", policy_id=7)
    assert d.ingress_isolated and d.egress_isolated
    got = [(i.type, i.dir, i.any_peer, i.set_id, i.proto, i.lo, i.hi) for i in d.items]
    want = [(i["type"], i["dir"], i.get("any_peer", False), i.get("set_id", 0), i.get("proto", 0),
             i.get("lo", 0), i.get("hi", 0)) for i in items]
    assert got == want
    bad = {
        "part before any rule": ([{"type": ITEM_PEER, "dir": 0, "set_id": 40}], True, INVALID_VALUE),
        "rule in a direction that is not isolated": (rule(1, any_peer=True), False, INVALID_VALUE),
        "unknown item type": (rule(0) + [{"type": 9, "dir": 0}], True, INVALID_VALUE),
        "missing set": (rule(0, peers=[99]), True, NO_SUCH_ENTRY),
        "set id out of range": (rule(0, peers=[1 << 24]), True, INVALID_VALUE_2),
        "addr+port set as peer": (rule(0, peers=[41]), True, INVALID_VALUE_3),
        "reversed port range": (rule(0, ports=[(6, 90, 80)]), True, INVALID_VALUE),
    }
    for what, (its, egress, rv) in bad.items():
        assert retval(vpp, "kpol_policy_set", policy_id=7, ingress_isolated=True,
                      egress_isolated=egress, items=its) == rv, what
    (d2,) = vpp.dump("kpol_policy_dump", policy_id=7)
    assert d2.items == d.items  # the old policy is still in force
    assert retval(vpp, "kpol_ipset_del", set_id=40) == IN_USE
    assert retval(vpp, "kpol_policy_set", policy_id=1 << 20, ingress_isolated=False,
                  egress_isolated=False, items=[]) == INVALID_VALUE_2
    vpp.call("kpol_policy_del", policy_id=7)
    vpp.call("kpol_ipset_del", set_id=40)
    vpp.call("kpol_ipset_del", set_id=41)


def test_attach_turns_the_feature_nodes_on_and_interface_delete_detaches(vpp: VppClient):
    call(vpp, "kpol_policy_set", policy_id=8, ingress_isolated=True, egress_isolated=False, items=[])
    loop = interfaces.create_loopback(vpp)
    try:
        assert retval(vpp, "kpol_interface_attach", sw_if_index=loop, policy_id=9, is_add=True) == NO_SUCH_ENTRY
        assert retval(vpp, "kpol_interface_attach", sw_if_index=9999, policy_id=8,
                      is_add=True) != 0
        vpp.call("kpol_interface_attach", sw_if_index=loop, policy_id=8, is_add=True)
        assert [(d.sw_if_index, d.policy_id) for d in vpp.dump("kpol_interface_dump")] == [(loop, 8)]
        feats = cli(vpp, f"show interface features {interfaces.get(vpp, loop).name}")
        assert "kpol-ip4-in" in feats and "kpol-ip6-out" in feats
        assert retval(vpp, "kpol_policy_del", policy_id=8) == IN_USE
    finally:
        interfaces.delete_loopback(vpp, loop)
    assert vpp.dump("kpol_interface_dump") == []
    vpp.call("kpol_policy_del", policy_id=8)


def counters(vpp: VppClient, policy_id: int, direction: int) -> list[int]:
    for d in vpp.dump("kpol_counters_dump", policy_id=policy_id):
        if d.dir == direction:
            return list(d.counts)
    return []


def error_count(vpp: VppClient, node: str, reason: str) -> int:
    """The "show errors" count of a node's reason (reasons are shown cut to ~35 characters)."""
    for line in cli(vpp, "show errors").splitlines():
        f = line.split()
        if len(f) > 2 and f[1] == node and reason in line:
            return int(f[0])
    return 0


def test_ipv6_packets_are_parsed_and_each_drop_counted_once(vpp: VppClient):
    """IPv6 TCP from a packet-generator interface: the pod's egress allows tcp/80 to one peer."""
    cli(vpp, "create packet-generator interface pg0")
    cli(vpp, "set interface ip address pg0 2001:db8::1/64")
    cli(vpp, "set interface state pg0 up")
    (pg0,) = [i.sw_if_index for i in interfaces.dump(vpp) if i.name == "pg0"]
    vpp.call("kpol_ipset_add", set_id=60, kind=KIND_ADDR)
    call(vpp, "kpol_ipset_members_add_del", set_id=60, is_add=True, members=[member("2001:db8::2")])
    call(vpp, "kpol_policy_set", policy_id=60, ingress_isolated=False, egress_isolated=True,
         items=rule(1, peers=[60], ports=[(6, 80, 80)]))
    vpp.call("kpol_interface_attach", sw_if_index=pg0, policy_id=60, is_add=True)
    drops_before = error_count(vpp, "kpol-ip6-in", "default deny")
    try:
        for name, dport in (("kp6ok", 80), ("kp6no", 81)):
            cli(vpp, f"packet-generator new {{ name {name} limit 5 size 80-80 node ip6-input source pg0 "
                     f"data {{ TCP: 2001:db8::5 -> 2001:db8::2 TCP: 1000 -> {dport} incrementing 20 }} }}")
        cli(vpp, "packet-generator enable-stream")
        deadline = time.monotonic() + 10
        while counters(vpp, 60, 1) != [5, 5] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert counters(vpp, 60, 1) == [5, 5]  # 5 default-deny drops, 5 allowed by rule 0
        assert error_count(vpp, "kpol-ip6-in", "default deny") - drops_before == 5
    finally:
        cli(vpp, "packet-generator delete kp6ok")
        cli(vpp, "packet-generator delete kp6no")
        vpp.call("kpol_interface_attach", sw_if_index=pg0, policy_id=60, is_add=False)
        vpp.call("kpol_policy_del", policy_id=60)
        vpp.call("kpol_ipset_del", set_id=60)


# ---- traffic through the node ----

SERVER = r"""
import socket, sys, threading
name, addr = sys.argv[1], sys.argv[2]
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(16)
    while True:
        c, peer = s.accept(); c.sendall(f"{name} {peer[0]}\n".encode()); c.close()
for p in (8080, 8081):
    threading.Thread(target=serve, args=(p,), daemon=True).start()
print("listening", flush=True)
threading.Event().wait()
"""

CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
print(s.makefile().readline().strip())
"""

PODS = {"client": "10.98.1.2", "server": "10.98.1.3", "other": "10.98.1.4"}
GATEWAY = ipaddress.ip_interface("10.98.255.1/32")


@dataclass
class Pods:
    vpp: VppClient
    ns: dict[str, str]
    sw: dict[str, int]

    def connect(self, who: str, port: int, timeout: float = 3.0, to: str = "server") -> str:
        """One TCP connection from pod ``who`` to pod ``to``; the line it answers, or "error"."""
        r = subprocess.run(["ip", "netns", "exec", self.ns[who], sys.executable, "-c", CLIENT,
                            PODS[to], str(port), str(timeout)],
                           capture_output=True, text=True, timeout=30)
        return r.stdout.strip() if r.returncode == 0 else "error"


@contextmanager
def _pods(vpp: VppClient) -> Iterator[Pods]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    sfx = secrets.token_hex(3)
    with ExitStack() as stack:
        loop = interfaces.create_loopback(vpp)
        stack.callback(interfaces.delete_loopback, vpp, loop)
        interfaces.add_address(vpp, loop, GATEWAY)
        interfaces.set_admin_up(vpp, loop)
        ns, sw = {}, {}
        for name, ip in PODS.items():
            ns[name] = f"vpa-kpol-{name[0]}-{sfx}"
            host_if = f"vkp{name[0]}{sfx}"
            sw[name] = netpods.pod(vpp, stack, ns[name], host_if, [ip], loopback=loop).sw_if_index
        server = subprocess.Popen(["ip", "netns", "exec", ns["server"], sys.executable, "-c", SERVER, "server",
                                   PODS["server"]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def stop() -> None:
            server.kill()
            server.wait(timeout=5)

        stack.callback(stop)
        assert server.stdout is not None and "listening" in server.stdout.readline()
        yield Pods(vpp, ns, sw)
        # ExitStack: server, af_packet interfaces, links, namespaces, loopback.


@pytest.fixture(scope="module")
def pods(vpp: VppClient):
    with _pods(vpp) as p:
        yield p


@pytest.fixture(scope="module")
def pods_on_two_threads(vpp_workers: VppClient):
    """The pods with the server polled by the main thread and the others by the worker: every
    connection's request and reply are received on different threads."""
    with _pods(vpp_workers) as p:
        threads.place(vpp_workers, p.sw["server"], threads.MAIN)
        for who in ("client", "other"):
            threads.place(vpp_workers, p.sw[who], 1)
        yield p


def _warm_up(pods: Pods) -> None:
    """Before any policy everything connects (and the neighbours are learnt)."""
    for who in ("client", "other"):
        got = ""
        for _ in range(5):
            got = pods.connect(who, 8080)
            if got.startswith("server"):
                break
            time.sleep(0.3)
        assert got == f"server {PODS[who]}"


@pytest.mark.netns
def test_policy_on_real_traffic(pods: Pods):
    vpp = pods.vpp
    _warm_up(pods)
    vpp.call("kpol_ipset_add", set_id=100, kind=KIND_ADDR)
    call(vpp, "kpol_ipset_members_add_del", set_id=100, is_add=True, members=[member(PODS["client"])])
    # server: ingress only from set 100 on tcp/8080; egress isolated with no rule, so
    # the only packets it may send are replies of admitted flows
    call(vpp, "kpol_policy_set", policy_id=100, ingress_isolated=True, egress_isolated=True,
             items=rule(0, peers=[100], ports=[(6, 8080, 8080)]))
    vpp.call("kpol_interface_attach", sw_if_index=pods.sw["server"], policy_id=100, is_add=True)
    try:
        # allowed connect succeeds, and its replies (egress-denied otherwise) pass
        assert pods.connect("client", 8080) == f"server {PODS['client']}"
        # a port no rule allows, and a peer not in the set: time out
        assert pods.connect("client", 8081, timeout=1.5) == "error"
        assert pods.connect("other", 8080, timeout=1.5) == "error"
        ingress = counters(vpp, 100, 0)
        assert ingress[1] > 0, ingress  # rule 0 admitted the first connection
        assert ingress[0] > 0, ingress  # default deny dropped the others' SYNs
        stats = vpp.call("kpol_flow_stats")
        assert stats.reply_hits > 0 and stats.flows_created > 0
        assert error_count(vpp, "kpol-ip4-out", "default deny") > 0
        # a pod joining the selected set gains access: one member add, no rule rewrite
        call(vpp, "kpol_ipset_members_add_del", set_id=100, is_add=True, members=[member(PODS["other"])])
        assert pods.connect("other", 8080) == f"server {PODS['other']}"
        # ... and loses it when it leaves
        call(vpp, "kpol_ipset_members_add_del", set_id=100, is_add=False, members=[member(PODS["other"])])
        assert pods.connect("other", 8080, timeout=1.5) == "error"
        # the server cannot open connections of its own: egress is isolated with no rule
        denied_before = counters(vpp, 100, 1)[0]
        assert pods.connect("server", 8080, timeout=1.5, to="other") == "error"
        assert counters(vpp, 100, 1)[0] > denied_before
    finally:
        vpp.call("kpol_interface_attach", sw_if_index=pods.sw["server"], policy_id=100, is_add=False)
        vpp.call("kpol_policy_del", policy_id=100)
        vpp.call("kpol_ipset_del", set_id=100)
    assert pods.connect("other", 8081) == f"server {PODS['other']}"  # detached: open again


@pytest.mark.netns
def test_policy_holds_when_a_connection_crosses_threads(pods_on_two_threads: Pods):
    """The server's replies are received on the main thread, its requests were on the worker:
    kpol hands each packet to the thread owning the server interface's flows, so the replies of
    admitted connections find their flow (the server's egress is isolated with no rule)."""
    pods, vpp = pods_on_two_threads, pods_on_two_threads.vpp
    assert threads.thread_of(vpp, pods.sw["server"]) == threads.MAIN
    assert threads.thread_of(vpp, pods.sw["client"]) == 1 and threads.thread_of(vpp, pods.sw["other"]) == 1
    _warm_up(pods)
    vpp.call("kpol_ipset_add", set_id=110, kind=KIND_ADDR)
    call(vpp, "kpol_ipset_members_add_del", set_id=110, is_add=True, members=[member(PODS["client"])])
    call(vpp, "kpol_policy_set", policy_id=110, ingress_isolated=True, egress_isolated=True,
         items=rule(0, peers=[110], ports=[(6, 8080, 8080)]))
    vpp.call("kpol_interface_attach", sw_if_index=pods.sw["server"], policy_id=110, is_add=True)
    try:
        handed = error_count(vpp, "kpol-ip4-in", "handed to the worker")
        for _ in range(5):
            assert pods.connect("client", 8080) == f"server {PODS['client']}"
        assert pods.connect("other", 8080, timeout=1.5) == "error"  # still enforced
        # the replies really crossed: received on main, judged on the worker
        assert error_count(vpp, "kpol-ip4-in", "handed to the worker") > handed
        assert error_count(vpp, "kpol-ip4-in", "handoff queue was full") == 0
    finally:
        vpp.call("kpol_interface_attach", sw_if_index=pods.sw["server"], policy_id=110, is_add=False)
        vpp.call("kpol_policy_del", policy_id=110)
        vpp.call("kpol_ipset_del", set_id=110)
