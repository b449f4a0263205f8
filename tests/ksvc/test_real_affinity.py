"""ClientIP affinity with its timeout on real traffic, through the ksvc plugin in a real VPP.

Topology, for IPv4 and for IPv6: a client pod with eight addresses (eight "clients" for
affinity) and two backend pods, each in its own namespace on a veth attached to VPP with
af_packet, ksvc enabled on all three; every backend answers TCP and UDP with its own name.
A TCP and a UDP service with both backends and an affinity timeout of 2 s:

- within the timeout, each client's connections all reach one backend;
- after waiting past the timeout, a client's new connection is balanced afresh (by the
  flow's hash): over 8 clients x 4 rounds, some client must move and both backends must
  be used (the chance that a correct plugin fails this is below 1e-6: see the tests);
- replies come back from the VIP (the client's connected sockets accept nothing else).

And once more, IPv4, with a worker thread beside the main thread: the client is polled by the
main thread and the backends by the worker, so each request is received on one thread and its
reply on the other (ksvc hands packets to the thread owning the client's sessions); each test
asserts where the pods sit.

Everything is removed in teardown, on failure too. Needs root, VPPAGENT_VPP_BIN, and the
plugin (VPPAGENT_KSVC_PLUGIN_DIR or a cmake build, see conftest).
"""
from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed import netpods, threads
from vppagent.vpp import af_packet, interfaces, ksvc
from vppagent.vpp.client import VppClient
from vppagent.vpp.ksvc import PROTO_TCP, PROTO_UDP, KsvcService

from .conftest import real_target

pytestmark = [pytest.mark.real_vpp, pytest.mark.netns]

FAMILIES = {
    4: {"vip": "10.97.0.10", "clients": [f"10.97.1.{i}" for i in range(20, 28)],
        "backends": {"be-a": "10.97.1.3", "be-b": "10.97.1.4"}},
    6: {"vip": "fd00:97::10", "clients": [f"fd00:97:1::{i:x}" for i in range(0x20, 0x28)],
        "backends": {"be-a": "fd00:97:1::3", "be-b": "fd00:97:1::4"}},
}
BACKEND_NAMES = ("be-a", "be-b")
TIMEOUT_S = 2
SERVER_PORT = 8080

SERVER = r"""
import socket, sys, threading
name, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
af = socket.AF_INET6 if ":" in addr else socket.AF_INET
t = socket.socket(af); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind((addr, port)); t.listen(64)
u = socket.socket(af, socket.SOCK_DGRAM); u.bind((addr, port))
def udp():
    while True:
        data, peer = u.recvfrom(2048); u.sendto(f"{name} {peer[0]}".encode(), peer)
threading.Thread(target=udp, daemon=True).start()
print("listening", flush=True)
while True:
    c, peer = t.accept(); c.sendall(f"{name} {peer[0]}\n".encode()); c.close()
"""

# Connects from each source address in turn (count times each, round robin) and prints a
# JSON list of [source, answer]; an answer is "error: ..." when the try failed.
CLIENT = r"""
import json, socket, sys
proto, vip, port, count, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
af = socket.AF_INET6 if ":" in vip else socket.AF_INET
out = []
for _ in range(count):
    for src in sys.argv[6:]:
        try:
            if proto == "tcp":
                s = socket.socket(af); s.settimeout(timeout); s.bind((src, 0)); s.connect((vip, port))
                got = s.makefile().readline().strip()
            else:
                s = socket.socket(af, socket.SOCK_DGRAM); s.settimeout(timeout)
                s.bind((src, 0)); s.connect((vip, port)); s.send(b"hi"); got = s.recv(2048).decode()
            s.close()
        except OSError as e:
            got = f"error: {e}"
        out.append([src, got])
print(json.dumps(out))
"""


@dataclass
class Pods:
    vpp: VppClient
    family: int
    ns: dict[str, str]
    sw: dict[str, int]
    placed: dict[str, int]  # pod -> the thread that polls it

    def check_placement(self) -> None:
        assert {n: threads.thread_of(self.vpp, sw) for n, sw in self.sw.items()} == self.placed

    @property
    def vip(self) -> str:
        return FAMILIES[self.family]["vip"]

    @property
    def clients(self) -> list[str]:
        return FAMILIES[self.family]["clients"]

    def ask(self, proto: str, count: int = 1, port: int = 80, timeout: float = 3.0,
            sources: list[str] | None = None, to: str | None = None) -> list[tuple[str, str]]:
        """``count`` rounds of one connection from each source; (source, backend name or error)."""
        r = subprocess.run(["ip", "netns", "exec", self.ns["client"], sys.executable, "-c", CLIENT, proto,
                            to or self.vip, str(port), str(count), str(timeout), *(sources or self.clients)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return [(src, got.split()[0] if not got.startswith("error") else got) for src, got in json.loads(r.stdout)]


def _pod(vpp: VppClient, stack: ExitStack, ns: str, host_if: str, ips: list[str], loop: int) -> int:
    sw = netpods.pod(vpp, stack, ns, host_if, ips, loopback=loop, flags=af_packet.Flags.QDISC_BYPASS,
                     pod_offloads=False).sw_if_index
    ksvc.enable(vpp, sw, True)
    return sw


@pytest.fixture(scope="module", params=[(4, 0), (6, 0), (4, 1)], ids=["ipv4", "ipv6", "ipv4-two-threads"])
def pods(request: pytest.FixtureRequest, ksvc_plugin_dirs: tuple[Path, ...], tmp_path_factory: pytest.TempPathFactory):
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    family, workers = request.param
    fam = FAMILIES[family]
    sfx = secrets.token_hex(3)
    with ExitStack() as stack:
        vpp = real_target(stack, tmp_path_factory.mktemp("ksvc-e2e"), ksvc_plugin_dirs,  # stops VPP last
                          workers=workers).vpp
        loop = interfaces.create_loopback(vpp)
        interfaces.add_address(vpp, loop, ipaddress.ip_interface("10.97.255.1/32"))
        interfaces.add_address(vpp, loop, ipaddress.ip_interface("fd00:97:ff::1/128"))
        interfaces.set_admin_up(vpp, loop)
        ns, sw = {}, {}
        for name, ips in (("client", fam["clients"]), *((n, [ip]) for n, ip in fam["backends"].items())):
            ns[name] = f"vpa-ksvc-{name[-1]}-{sfx}"
            sw[name] = _pod(vpp, stack, ns[name], f"vks{name[-1]}{sfx}", ips, loop)
        for name, ip in fam["backends"].items():
            p = subprocess.Popen(["ip", "netns", "exec", ns[name], sys.executable, "-c", SERVER, name, ip,
                                  str(SERVER_PORT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            stack.callback(lambda p=p: (p.kill(), p.wait(timeout=5)))
            assert p.stdout is not None and "listening" in p.stdout.readline()
        placed = {n: threads.MAIN for n in sw}
        if workers:
            placed.update({n: 1 for n in fam["backends"]})
            for n, thread in placed.items():
                threads.place(vpp, sw[n], thread)
        pods = Pods(vpp, family, ns, sw, placed)
        # warm up: every client reaches every backend directly (no service involved)
        for name, ip in fam["backends"].items():
            for _ in range(10):
                got = pods.ask("tcp", port=SERVER_PORT, to=ip, timeout=1.0)
                if all(g == name for _, g in got):
                    break
                time.sleep(0.3)
            assert all(g == name for _, g in got), got
        yield pods


def _service(pods: Pods, proto: int, backends: tuple[str, ...] = BACKEND_NAMES) -> KsvcService:
    fam = FAMILIES[pods.family]
    return KsvcService(ipaddress.ip_address(fam["vip"]), proto, PORTS[proto],
                       tuple((ipaddress.ip_address(fam["backends"][b]), SERVER_PORT) for b in backends), TIMEOUT_S)


PORTS = {PROTO_TCP: 80, PROTO_UDP: 53}
ASKS = (("tcp", 80), ("udp", 53))


def test_affinity_holds_within_the_timeout_and_expires_after_it(pods: Pods):
    """TCP and UDP services side by side (affinity is per client and service)."""
    pods.check_placement()
    for proto in PORTS:
        ksvc.service_update(pods.vpp, _service(pods, proto))
    try:
        before = ksvc.stats(pods.vpp)
        # Within the timeout: 5 rounds back to back (each packet refreshes the client's
        # entry). Without affinity all 5 of a client would agree with chance 1/16; for 8
        # clients, 2^-32.
        history: dict[tuple[str, str], list[str]] = {}
        for proto, port in ASKS:
            got = pods.ask(proto, count=5, port=port)
            assert all(g in BACKEND_NAMES for _, g in got), got
            for src in pods.clients:
                names = {g for s, g in got if s == src}
                assert len(names) == 1, (proto, src, got)
                history[(proto, src)] = [names.pop()]
        # Past the timeout each round is a fresh pick per client, by the flow's hash. Per
        # protocol, a correct plugin fails "some client moves" with chance (1/8)^8 ~ 6e-8
        # and "both backends are used" with chance 2^-31 (4 rounds x 8 clients, fair picks).
        for _ in range(4):
            time.sleep(TIMEOUT_S + 0.5)
            for proto, port in ASKS:
                for src, g in pods.ask(proto, port=port):
                    assert g in BACKEND_NAMES, (proto, src, g)
                    history[(proto, src)].append(g)
        for proto, _ in ASKS:
            hist = {src: h for (p, src), h in history.items() if p == proto}
            assert any(len(set(h)) > 1 for h in hist.values()), (proto, hist)
            assert {g for h in hist.values() for g in h[1:]} == set(BACKEND_NAMES), (proto, hist)
        st = ksvc.stats(pods.vpp)
        assert st.affinity_hits - before.affinity_hits >= 2 * 8 * 4  # rounds 2..5, both protocols
        # Each TCP connection is a new 5-tuple (its port is in TIME_WAIT); a UDP ask may reuse an
        # ephemeral port, and so a session still alive: at least one new session per client there.
        assert st.sessions_created - before.sessions_created >= 8 * 9 + 8
        assert st.reply_hits > before.reply_hits
        assert st.table_full == before.table_full and st.no_backend == before.no_backend
    finally:
        for proto, port in PORTS.items():
            ksvc.service_del(pods.vpp, ipaddress.ip_address(pods.vip), proto, port)
    # deleted: the VIP is no longer translated (VPP has no route for it)
    assert all(g.startswith("error") for _, g in pods.ask("tcp", timeout=1.0, sources=pods.clients[:1]))


def test_a_backend_removed_by_an_update_gets_no_new_connections(pods: Pods):
    pods.check_placement()
    ksvc.service_update(pods.vpp, _service(pods, PROTO_TCP))
    try:
        got = pods.ask("tcp")
        assert all(g in BACKEND_NAMES for _, g in got), got
        # keep only be-b: clients whose affinity named be-a are re-picked at once
        ksvc.service_update(pods.vpp, _service(pods, PROTO_TCP, ("be-b",)))
        assert [g for _, g in pods.ask("tcp", count=2)] == ["be-b"] * 2 * len(pods.clients)
    finally:
        ksvc.service_del(pods.vpp, ipaddress.ip_address(pods.vip), PROTO_TCP, 80)
