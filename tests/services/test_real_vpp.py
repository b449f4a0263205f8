"""Services through a real VPP 26.06: traffic from pods and from outside the node, checked on both ends.

One private VPP (startup/vpp_process.py) and one topology for the module,
built with real namespaces and veth pairs attached to VPP with af_packet
(this machine has no /dev/vhost-net, so no taps):

- two pods on this node: ``client`` 10.99.1.2 and ``backend`` 10.99.1.3
  (unnumbered to a loopback, static neighbour, /32 route, as the CNI does);
- an ``outside`` namespace on the uplink: 192.0.2.2/24 (VPP: 192.0.2.1/24,
  the node's address, so NodePorts live there), which also plays a pod of
  another node, 10.99.2.5 (VPP routes 10.99.2.0/24 to it);
- a TCP server in each backend answers one line: its name and the peer
  address it saw, so the client IP is checked on the backend side.

Services go through the real feature and reconciler (``ServiceTranslations``
with SNAT); the interfaces get cnat through ``snat_kind.attach_interface``.
Everything is removed in teardown, on failure too.
"""
from __future__ import annotations

import ipaddress
import secrets
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from startup.ethtool import disable_offloads
from testbed import netpods, plugins, targets
from tests.services.conftest import Driver
from tests.services.helpers import Protocol, ServiceType, ep, eps, port, svc, upsert
from vppagent.cni import linux
from vppagent.model.k8s import Node, TrafficPolicy
from vppagent.services import InterfaceRole, attach_interface
from vppagent.vpp import af_packet, catalog, cnat, interfaces, neighbors, routes
from vppagent.vpp.api_defs import load_definitions
from vppagent.vpp.client import VppClient

pytestmark = [pytest.mark.real_vpp, pytest.mark.netns]

ME = "node-1"
NODE_IP = ipaddress.ip_interface("192.0.2.1/24")
OUTSIDE_IP = ipaddress.ip_interface("192.0.2.2/24")
REMOTE_POD = "10.99.2.5"
GATEWAY = ipaddress.ip_interface("10.99.255.1/32")

SERVER = r"""
import socket, sys
name, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((addr, port)); s.listen(16)
print("listening", flush=True)
while True:
    c, peer = s.accept()
    c.sendall(f"{name} {peer[0]}\n".encode()); c.close()
"""

CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
print(s.makefile().readline().strip())
"""


@dataclass
class Topology:
    vpp: VppClient
    driver: Driver
    ns: dict[str, str]
    sw_if_index: dict[str, int]
    cli_socket: str = ""

    def cli(self, command: str) -> str:
        """VPP's CLI output (for failure messages)."""
        r = subprocess.run(["vppctl", "-s", self.cli_socket, *command.split()], capture_output=True, text=True,
                           timeout=10)
        return r.stdout

    def connect(self, from_ns: str, ip: str, port_: int) -> str:
        """One TCP connection from namespace ``from_ns``; the server's line, or the error."""
        r = subprocess.run(["ip", "netns", "exec", self.ns[from_ns], sys.executable, "-c", CLIENT, ip, str(port_)],
                           capture_output=True, text=True, timeout=20)
        return r.stdout.strip() if r.returncode == 0 else f"error: {r.stderr.strip().splitlines()[-1:]}"

    def connect_retrying(self, from_ns: str, ip: str, port_: int, want_prefix: str) -> str:
        # The first packets may wait for ARP on the uplink: allow a few tries.
        got = ""
        for _ in range(5):
            got = self.connect(from_ns, ip, port_)
            if got.startswith(want_prefix):
                return got
            time.sleep(0.3)
        return got


def _pod(vpp: VppClient, stack: ExitStack, ns: str, host_if: str, ip: str, loopback: int) -> int:
    # Offloads off, as the test has always run: this tier checks translations, not GSO.
    return netpods.pod(vpp, stack, ns, host_if, [ip], loopback=loopback, flags=af_packet.Flags.QDISC_BYPASS,
                       pod_offloads=False).sw_if_index


def _server(stack: ExitStack, ns: str, name: str, addr: str, port_: int) -> None:
    p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, name, addr, str(port_)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop() -> None:
        p.kill()
        p.wait(timeout=5)

    stack.callback(stop)
    assert p.stdout is not None and "listening" in p.stdout.readline(), p.stderr.read() if p.stderr else ""


@pytest.fixture(scope="module")
def topo():
    sfx = secrets.token_hex(3)
    with ExitStack() as stack:
        # ClientIP affinity goes through our ksvc plugin.
        # Only the families this test uses are checked (not every family the agent pins).
        defs = load_definitions(targets.api_dir())
        required = catalog.required_messages(defs, catalog.requests([af_packet, interfaces, routes, neighbors, cnat]))
        required = {k: v for k, v in required.items() if not k.startswith("ksvc_")}
        target = targets.private_vpp(stack, plugin_dirs=plugins.plugin_dirs("ksvc"),
                                     client={"definitions": defs, "required": required})
        vpp, proc = target.vpp, target.proc
        assert vpp is not None and proc is not None
        loopback = interfaces.create_loopback(vpp)
        interfaces.add_address(vpp, loopback, GATEWAY)
        interfaces.set_admin_up(vpp, loopback)
        ns = {r: f"vpa-svc-{r[0]}{r[-1]}-{sfx}" for r in ("client", "backend", "outside", "second")}
        sw = {
            "client": _pod(vpp, stack, ns["client"], f"vsc{sfx}", "10.99.1.2", loopback),
            "backend": _pod(vpp, stack, ns["backend"], f"vsb{sfx}", "10.99.1.3", loopback),
            "second": _pod(vpp, stack, ns["second"], f"vs2{sfx}", "10.99.1.4", loopback),
        }
        # The uplink and the world behind it.
        netpods.netns(stack, ns["outside"])
        netpods.veth(stack, f"vsx{sfx}", ns["outside"])
        for cmd in (["link", "set", "eth0", "up"],
                    ["addr", "add", str(OUTSIDE_IP), "dev", "eth0"], ["addr", "add", f"{REMOTE_POD}/32", "dev", "lo"]):
            subprocess.run(["ip", "-n", ns["outside"], *cmd], check=True)
        linux.in_netns(linux.resolve_netns(ns["outside"]), lambda: disable_offloads("eth0"))
        up = netpods.attach(vpp, stack, f"vsx{sfx}")
        interfaces.add_address(vpp, up, NODE_IP)
        sw["uplink"] = up
        routes.add(vpp, routes.Route.of(ipaddress.ip_network("10.99.2.0/24"),
                                        routes.Path(sw_if_index=up, next_hop=OUTSIDE_IP.ip)))

        _server(stack, ns["backend"], "backend", "10.99.1.3", 8080)
        _server(stack, ns["second"], "second", "10.99.1.4", 8080)
        _server(stack, ns["client"], "client", "10.99.1.2", 8080)
        _server(stack, ns["outside"], "remote", REMOTE_POD, 8080)

        driver = Driver(vpp, snat=True, reject_vips=True)
        driver.feature.bind_vpp(vpp)
        upsert(driver.cluster, Node(ME, internal_ips=(NODE_IP.ip,)))
        driver.full()  # the SNAT entry first: the interface maps hang off it
        for role, name in ((InterfaceRole.POD, "client"), (InterfaceRole.POD, "backend"), (InterfaceRole.POD, "second"),
                           (InterfaceRole.UPLINK, "uplink")):
            attach_interface(vpp, sw[name], role)
        yield Topology(vpp, driver, ns, sw, str(proc.paths.cli_socket))
        # ExitStack: servers, interfaces, links and namespaces go, VPP stops.


def program(t: Topology, service, *slices) -> None:
    keys = [upsert(t.driver.cluster, service)] + [upsert(t.driver.cluster, s) for s in slices]
    res = t.driver.changed(*keys)
    assert res.failed == 0, t.driver.reconciler.failures


def test_a_pod_reaches_a_cluster_ip_and_gets_the_backends_answer(topo: Topology) -> None:
    program(topo, svc("web", ips=("10.96.0.10",)), eps("web-a", "web", [ep("10.99.1.3")]))
    got = topo.connect_retrying("client", "10.96.0.10", 80, "backend")
    assert got == "backend 10.99.1.2"  # pod to pod: no SNAT, the backend sees the client pod


def test_a_node_port_answers_from_the_node(topo: Topology) -> None:
    program(topo, svc("np", ips=("10.96.0.11",), type=ServiceType.NODE_PORT,
                      ports=[port("http", Protocol.TCP, 80, node_port=30080)]),
            eps("np-a", "np", [ep("10.99.1.3")]))
    got = topo.connect_retrying("outside", str(NODE_IP.ip), 30080, "backend")
    assert got.startswith("backend ")


def test_external_traffic_policy_local_preserves_the_client_ip(topo: Topology) -> None:
    program(topo, svc("local", ips=("10.96.0.12",), type=ServiceType.NODE_PORT,
                      ports=[port("http", Protocol.TCP, 80, node_port=30081)],
                      external_traffic_policy=TrafficPolicy.LOCAL),
            eps("local-a", "local", [ep("10.99.1.3"), ep(REMOTE_POD, node="node-2")]))
    got = topo.connect_retrying("outside", str(NODE_IP.ip), 30081, "backend")
    assert got == f"backend {OUTSIDE_IP.ip}"  # seen on the backend: the client's own address
    # Only the local endpoint serves (each connection has a new source port, so a new hash).
    assert {topo.connect("outside", str(NODE_IP.ip), 30081) for _ in range(6)} == {f"backend {OUTSIDE_IP.ip}"}


def test_a_node_port_to_a_remote_backend_is_source_natted(topo: Topology) -> None:
    program(topo, svc("far", ips=("10.96.0.13",), type=ServiceType.NODE_PORT,
                      ports=[port("http", Protocol.TCP, 80, node_port=30082)]),
            eps("far-a", "far", [ep(REMOTE_POD, node="node-2")]))
    got = topo.connect_retrying("outside", str(NODE_IP.ip), 30082, "remote")
    assert got == f"remote {NODE_IP.ip}"  # the remote backend answers the node, which un-NATs


def test_hairpin_a_pod_reaches_itself_through_its_service(topo: Topology) -> None:
    program(topo, svc("self", ips=("10.96.0.14",)), eps("self-a", "self", [ep("10.99.1.2")]))
    got = topo.connect_retrying("client", "10.96.0.14", 80, "client")
    # The k8s SNAT policy's src == dst rule: the pod sees the node's address, not its own.
    assert got == f"client {NODE_IP.ip}"


def test_without_cnat_on_the_ingress_interface_a_vip_is_not_translated(topo: Topology) -> None:
    program(topo, svc("probe", ips=("10.96.0.15",), type=ServiceType.NODE_PORT,
                      ports=[port("http", Protocol.TCP, 80, node_port=30083)]),
            eps("probe-a", "probe", [ep("10.99.1.3")]))
    assert topo.connect_retrying("outside", str(NODE_IP.ip), 30083, "backend").startswith("backend")
    cnat.enable_feature(topo.vpp, topo.sw_if_index["uplink"], False)
    try:
        assert not topo.connect("outside", str(NODE_IP.ip), 30083).startswith("backend")
    finally:
        cnat.enable_feature(topo.vpp, topo.sw_if_index["uplink"], True)
    assert topo.connect_retrying("outside", str(NODE_IP.ip), 30083, "backend").startswith("backend")


def test_a_service_without_endpoints_rejects_at_once_then_serves(topo: Topology) -> None:
    program(topo, svc("empty", ips=("10.96.0.16",)))
    got = topo.connect("client", "10.96.0.16", 80)
    # ICMP unreachable from VPP: the connect fails at once ("No route to host"), not after a timeout.
    assert got.startswith("error") and "No route to host" in got, got
    program(topo, svc("empty", ips=("10.96.0.16",)), eps("empty-a", "empty", [ep("10.99.1.3")]))
    assert topo.connect_retrying("client", "10.96.0.16", 80, "backend") == "backend 10.99.1.2"


def test_client_ip_affinity_with_its_timeout_through_ksvc(topo: Topology) -> None:
    from vppagent.vpp import ksvc

    if not ksvc.available(topo.vpp):
        pytest.skip("VPP has no ksvc plugin: set VPPAGENT_KSVC_PLUGIN_DIR (cmake -S vpp_plugins ...)")
    import dataclasses

    from vppagent.model.k8s import SessionAffinity

    sticky = dataclasses.replace(svc("sticky", ips=("10.96.0.17",)), session_affinity=SessionAffinity.CLIENT_IP,
                                 session_affinity_timeout_s=1)
    program(topo, sticky, eps("sticky-a", "sticky", [ep("10.99.1.3"), ep("10.99.1.4")]))
    assert [str(s.vip) for s in ksvc.service_dump(topo.vpp)] == ["10.96.0.17"]
    first = topo.connect("client", "10.96.0.17", 80)
    assert first.split()[0] in ("backend", "second"), first
    # Within the timeout every new connection (new source port) goes to the same backend,
    # which sees the client pod's own address.
    stats0 = ksvc.stats(topo.vpp)
    got = {topo.connect("client", "10.96.0.17", 80) for _ in range(6)}
    assert got == {first}
    assert ksvc.stats(topo.vpp).affinity_hits - stats0.affinity_hits >= 6
    # After the timeout the next connection is a new choice (counted by the plugin).
    time.sleep(1.5)
    stats1 = ksvc.stats(topo.vpp)
    after = topo.connect("client", "10.96.0.17", 80)
    assert after.split()[0] in ("backend", "second"), after
    assert ksvc.stats(topo.vpp).affinity_new == stats1.affinity_new + 1
