"""A real CNI client: containerd's ``ctr run --rm --cni`` drives the installed plugin.

ctr creates the task, runs the plugin (ADD) from /opt/cni/bin with the
conflist from /etc/cni/net.d (both private to the test's containerd),
starts the container, and on exit runs DEL. Each container waits on a
file in a bind-mounted control dir, so the test can look at the agent and
VPP while it runs, then lets it go and checks that DEL left nothing.
"""
from __future__ import annotations

import ipaddress
import os
import re

import pytest

from testbed.podnet import host_links, running_agent
from testbed.targets import real_vpp_reason
from tests.containerd.conftest import Runner, install_plugin
from vppagent.cni import pod_interface_kind
from vppagent.vpp import interfaces
from vppagent.vpp.stats import StatsReader

pytestmark = [pytest.mark.netns]

POD_CIDR = ipaddress.ip_network("10.244.1.0/24")
WAIT = 'while [ ! -e /ctl/go ]; do sleep 0.05; done'


def pod_interfaces(vpp) -> dict[str, interfaces.Interface]:
    return {i.tag: i for i in interfaces.dump(vpp) if i.tag.startswith(pod_interface_kind.TAG_PREFIX)}


def _addr(line: str) -> ipaddress.IPv4Interface:
    m = re.search(r"inet (\d+\.\d+\.\d+\.\d+/\d+)", line)
    assert m, line
    return ipaddress.ip_interface(m.group(1))


def test_ctr_run_cni_attaches_through_the_agent_and_del_cleans_up(runner: Runner) -> None:
    with running_agent() as h:
        install_plugin(runner.daemon, h.cni_socket)
        links_before = host_links()
        c = runner.run(1, "echo ADDR $(ip -o -4 addr show eth0); "
                          "echo ROUTE $(ip route show default); "
                          "echo LINKS $(ip -o link show | wc -l); " + WAIT + "; echo BYE")
        addr = _addr(c.wait_line("ADDR "))
        route = c.wait_line("ROUTE ")

        # While it runs: the address is the agent's allocation, and VPP has its interface.
        assert addr.ip in POD_CIDR and addr.network.prefixlen == 32
        assert "default via 169.254.1.1 dev eth0" in route
        assert h.agent.pod_network.ipam.allocations() == {(c.cni_id, "eth0"): (addr.ip,)}
        records = h.agent.pod_network.store.all()
        assert len(records) == 1 and records[0].container_id == c.cni_id
        assert records[0].netns.startswith("/proc/") and records[0].netns.endswith("/ns/net")
        tag = pod_interface_kind.TAG_PREFIX + pod_interface_kind.interface_name(c.cni_id, "eth0")
        assert tag in pod_interfaces(h.vpp)
        assert pod_interface_kind.host_ifname(c.cni_id, "eth0") in host_links() - links_before

        c.release()
        code, lines, err = c.finish()
        assert code == 0, (lines, err)
        assert lines[-1] == "BYE"
        # ctr ran DEL after the task exited: nothing of the pod is left anywhere.
        assert pod_interfaces(h.vpp) == {}
        assert h.agent.pod_network.ipam.allocations() == {}
        assert h.agent.pod_network.store.all() == []
        assert host_links() == links_before


def test_ctr_run_reports_plugin_errors_and_nothing_leaks(runner: Runner, tmp_path) -> None:
    # The conflist points at a socket nobody serves: ctr reports the plugin's error document.
    install_plugin(runner.daemon, str(tmp_path / "no-agent.sock"))
    links_before = host_links()
    code, lines, err = runner.run(2, "echo STARTED").finish()
    assert code != 0 and "STARTED" not in lines
    assert "vppagent unreachable" in err, err
    assert host_links() == links_before

    # The agent refuses (pool exhausted): the failed ADD leaves nothing behind.
    with running_agent(pod_cidrs=("10.244.1.0/30",)) as h:  # one usable address
        install_plugin(runner.daemon, h.cni_socket)
        first = runner.run(3, "echo ADDR $(ip -o -4 addr show eth0); " + WAIT)
        held = _addr(first.wait_line("ADDR ")).ip
        code, lines, err = runner.run(4, "echo STARTED").finish()
        assert code != 0 and "STARTED" not in lines
        assert "10.244.1.0/30" in err, err
        assert h.agent.pod_network.ipam.allocations() == {(first.cni_id, "eth0"): (held,)}
        assert len(pod_interfaces(h.vpp)) == 1
        first.release()
        assert first.finish()[0] == 0
        assert pod_interfaces(h.vpp) == {} and h.agent.pod_network.ipam.allocations() == {}
        assert host_links() == links_before


_real = pytest.mark.skipif(real_vpp_reason() is not None or not os.environ.get("VPPAGENT_VPP_BIN"),
                           reason=real_vpp_reason() or "needs VPPAGENT_VPP_BIN (a private VPP)")


@pytest.mark.real_vpp
@_real
def test_two_ctr_containers_ping_and_talk_tcp_through_vpp(runner: Runner) -> None:
    with running_agent(vpp_bin=os.environ["VPPAGENT_VPP_BIN"]) as h:
        install_plugin(runner.daemon, h.cni_socket)
        links_before = host_links()
        server = runner.run(1, "echo ADDR $(ip -o -4 addr show eth0); "
                               "nc -l -p 5555 > /ctl/received; echo RECEIVED; "
                               "while [ ! -e /ctl/peer ]; do sleep 0.05; done; "
                               "ping -c 3 -i 0.2 -W 2 $(cat /ctl/peer); echo PING-RC $?; " + WAIT)
        server_ip = _addr(server.wait_line("ADDR ")).ip
        client = runner.run(2, "echo ADDR $(ip -o -4 addr show eth0); "
                               f"ping -c 3 -i 0.2 -W 2 {server_ip}; echo PING-RC $?; "
                               f"echo hello-through-vpp | nc {server_ip} 5555; echo NC-RC $?; " + WAIT)
        client_ip = _addr(client.wait_line("ADDR ")).ip
        assert server_ip != client_ip and {server_ip, client_ip} <= set(POD_CIDR)

        assert client.wait_line("PING-RC ") == "PING-RC 0", client.lines
        assert client.wait_line("NC-RC ") == "NC-RC 0", client.lines
        server.wait_line("RECEIVED")
        assert (server.control / "received").read_text() == "hello-through-vpp\n"
        (server.control / "peer").write_text(f"{client_ip}\n")
        assert server.wait_line("PING-RC ") == "PING-RC 0", server.lines

        # The packets crossed VPP: both pods' VPP interfaces received and sent them.
        ifs = pod_interfaces(h.vpp)
        sw = {cid: ifs[pod_interface_kind.TAG_PREFIX + pod_interface_kind.interface_name(cid, "eth0")].sw_if_index
              for cid in (server.cni_id, client.cni_id)}
        stats_socket = os.path.join(os.path.dirname(h.agent.cfg.vpp_socket), "stats.sock")
        with StatsReader(stats_socket) as stats:
            counters = {c.sw_if_index: c for c in stats.interface_counters()}
        for cid, index in sw.items():
            # 3 echo requests or replies each way, plus the TCP exchange.
            assert counters[index].rx_packets >= 6, (cid, counters[index])
            assert counters[index].tx_packets >= 6, (cid, counters[index])

        for c in (server, client):
            c.release()
            code, lines, err = c.finish()
            assert code == 0, (lines, err)
        assert pod_interfaces(h.vpp) == {}
        assert h.agent.pod_network.ipam.allocations() == {}
        assert host_links() == links_before
