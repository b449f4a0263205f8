"""The agent's CNI backend over real gRPC, real netns and veth, against the emulator.

Each test checks the outcome where it lands: the pod netns (addresses,
routes), VPP (tagged interface, host route, neighbour), the node (veth
host ends) and the agent's state (IPAM, attachment records).
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from testbed.fakekube import objects as k
from testbed.podnet import Pods, container_id, host_links, running_agent
from testbed.wait import wait_for
from vppagent.cni import linux, pod_interface_kind
from vppagent.vpp import af_packet, interfaces, memif, neighbors, routes

pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")]


@pytest.fixture
def pods():
    p = Pods()
    yield p
    p.close()


def pod_interfaces(vpp) -> dict[str, interfaces.Interface]:
    return {i.tag: i for i in interfaces.dump(vpp) if i.tag.startswith(pod_interface_kind.TAG_PREFIX)}


def pod_routes(vpp) -> set[str]:
    net = ipaddress.ip_network("10.244.1.0/24")
    return {str(r.prefix) for r in routes.dump(vpp) if r.prefix.subnet_of(net) and r.prefix.prefixlen == 32}


def test_add_attaches_the_pod_and_del_removes_everything(pods: Pods) -> None:
    with running_agent() as h:
        before_links = host_links()
        ns = pods.netns(1)
        cid = container_id(1)
        result, err = h.add(cid, ns, pod="web")
        assert err is None, err
        ip = result["ips"][0]["address"]
        addr = ipaddress.ip_interface(ip)
        assert addr.ip in ipaddress.ip_network("10.244.1.0/24") and addr.network.prefixlen == 32
        assert result["ips"][0]["gateway"] == "169.254.1.1"
        assert result["interfaces"][result["ips"][0]["interface"]]["sandbox"] == ns

        # The pod side.
        shown = pods.exec(ns, "ip", "-j", "addr", "show", "eth0")
        assert str(addr.ip) in shown.stdout
        route = pods.exec(ns, "ip", "route", "show", "default").stdout
        assert "via 169.254.1.1" in route
        mtu = json.loads(shown.stdout)[0]["mtu"]
        assert mtu == 1440  # automatic: fits IPsec and WireGuard on a 1500 uplink
        # pod_offloads (the default): TCP/UDP partial checksums kept, SCTP's off (VPP cannot finish it)
        offloads = linux.checksum_offloads(ns, "eth0")
        assert offloads.get("tx-checksum-ip-generic") is True and offloads.get("tx-checksum-sctp") is False, offloads

        # The VPP side: a tagged af_packet interface, unnumbered, a host route, a neighbour.
        tag = pod_interface_kind.TAG_PREFIX + pod_interface_kind.interface_name(cid, "eth0")
        ifs = pod_interfaces(h.vpp)
        assert tag in ifs and ifs[tag].admin_up and ifs[tag].mtu == 1440
        sw = ifs[tag].sw_if_index
        host = pod_interface_kind.host_ifname(cid, "eth0")
        assert (sw, host) in {(a.sw_if_index, a.host_if_name) for a in af_packet.dump(h.vpp)}
        assert pod_routes(h.vpp) == {f"{addr.ip}/32"}
        assert (str(addr.ip), sw) in {(str(n.ip), n.sw_if_index) for n in neighbors.dump(h.vpp)}
        assert sw in interfaces.unnumbered(h.vpp)
        assert host in host_links() - before_links
        # No IPv6 on VPP's end: the kernel's own link-local chatter would only be punted by VPP.
        assert open(f"/proc/sys/net/ipv6/conf/{host}/disable_ipv6").read().strip() == "1"
        assert h.agent.pod_network.ipam.allocations()[(cid, "eth0")] == (addr.ip,)

        assert h.delete(cid, ns, pod="web") is None
        assert pod_interfaces(h.vpp) == {}
        assert pod_routes(h.vpp) == set()
        assert host_links() == before_links
        assert h.agent.pod_network.ipam.allocations() == {}
        assert h.agent.pod_network.store.all() == []
        assert pods.exec(ns, "ip", "link", "show", "eth0").returncode != 0


def test_netconf_mtu_is_honoured_and_a_bad_one_refused(pods: Pods) -> None:
    from testbed import podnet as harness

    with running_agent() as h:
        ns = pods.netns(1)
        req = h.request(container_id(1), ns)
        req.config = json.dumps({**harness.NETCONF, "mtu": 1400}).encode()
        reply = h.stub().Add(req, timeout=30)
        assert not reply.HasField("error"), reply.error
        assert json.loads(pods.exec(ns, "ip", "-j", "link", "show", "eth0").stdout)[0]["mtu"] == 1400
        assert next(iter(pod_interfaces(h.vpp).values())).mtu == 1400
        req = h.request(container_id(2), pods.netns(2))
        req.config = json.dumps({**harness.NETCONF, "mtu": 100}).encode()
        reply = h.stub().Add(req, timeout=30)
        assert reply.error.code == 7 and len(pod_interfaces(h.vpp)) == 1


def test_add_is_idempotent_and_del_of_unknown_or_vanished_pods_succeeds(pods: Pods) -> None:
    with running_agent() as h:
        ns = pods.netns(1)
        cid = container_id(1)
        first, err = h.add(cid, ns)
        assert err is None, err
        again, err = h.add(cid, ns)
        assert err is None and again == first
        assert len(pod_interfaces(h.vpp)) == 1

        other_ns = pods.netns(2)
        _, err = h.add(cid, other_ns)
        assert err is not None and err.code == 105

        assert h.delete(container_id(99), ns) is None  # never attached
        # an ID too long to be recorded: ADD refuses it up front, a DEL of it succeeds
        _, err = h.add("a" * 300, other_ns)
        assert err is not None and err.code == 4 and "too long" in err.msg, err
        assert h.delete("a" * 300, ns) is None
        assert len(pod_interfaces(h.vpp)) == 1
        pods.drop(ns)  # the runtime removed the sandbox first
        assert h.delete(cid, ns) is None
        assert pod_interfaces(h.vpp) == {} and host_links() == set()
        assert h.delete(cid, ns) is None  # twice


def test_failed_adds_leave_nothing_behind(pods: Pods) -> None:
    with running_agent(pod_cidrs=("10.244.1.0/30",)) as h:  # one usable address (.2)
        before = host_links()
        _, err = h.add(container_id(1), "/var/run/netns/does-not-exist")
        assert err.code == 3 and "does not exist" in err.msg

        _, err = h.add(container_id(2), "relative/path")
        assert err.code == 4

        ok_ns = pods.netns(1)
        res, err = h.add(container_id(3), ok_ns)
        assert err is None, err
        _, err = h.add(container_id(4), pods.netns(2))
        assert err.code == 102 and "10.244.1.0/30" in err.details

        # VPP refuses: someone else already attached an af_packet to the host end's name.
        cid = container_id(5)
        h.delete(container_id(3), ok_ns)
        host = pod_interface_kind.host_ifname(cid, "eth0")
        subprocess.run(["ip", "link", "add", host, "type", "veth", "peer", "name", "vpx" + cid[-8:]], check=True)
        try:
            foreign = af_packet.create(h.vpp, host)
            _, err = h.add(cid, pods.netns(3))
            assert err is not None and err.code in (5, 103), err
            af_packet.delete(h.vpp, host)
        finally:
            subprocess.run(["ip", "link", "del", host], check=False)
        assert foreign not in {i.sw_if_index for i in interfaces.dump(h.vpp)}
        assert pod_interfaces(h.vpp) == {}
        assert pod_routes(h.vpp) == set()
        assert host_links() == before
        assert h.agent.pod_network.ipam.allocations() == {}
        assert h.agent.pod_network.store.all() == []


def test_parallel_adds_get_distinct_addresses_and_all_dels_clean_up(pods: Pods) -> None:
    with running_agent() as h:
        nss = [pods.netns(i) for i in range(12)]
        cids = [container_id(i) for i in range(12)]
        with ThreadPoolExecutor(6) as ex:
            results = list(ex.map(lambda a: h.add(*a), zip(cids, nss)))
        assert all(err is None for _, err in results), [e for _, e in results if e]
        ips = {r["ips"][0]["address"] for r, _ in results}
        assert len(ips) == 12
        assert len(pod_interfaces(h.vpp)) == 12 and len(pod_routes(h.vpp)) == 12
        with ThreadPoolExecutor(6) as ex:
            errs = list(ex.map(lambda a: h.delete(*a), zip(cids, nss)))
        assert errs == [None] * 12
        assert pod_interfaces(h.vpp) == {} and pod_routes(h.vpp) == set() and host_links() == set()


def test_a_restarted_agent_adopts_its_pods_without_touching_them(pods: Pods, tmp_path) -> None:
    ns = pods.netns(1)
    cid = container_id(1)
    with running_agent(state_dir=str(tmp_path / "state")) as h:
        result, err = h.add(cid, ns)
        assert err is None
        before = pod_interfaces(h.vpp)
        # The next agent: same state dir, same VPP, same API server.
        agent2 = h.restart()
        mutating = {m: n for m, n in agent2.vpp.calls.items()
                    if not m.endswith(("_dump", "_get_table", "control_ping", "get_first_msg_id"))
                    and m not in ("sockclnt_create", "show_version", "control_ping")}
        assert mutating == {}, mutating
        assert pod_interfaces(h.vpp) == before  # same sw_if_index: adopted, not re-created
        assert agent2.pod_network.ipam.allocations()[(cid, "eth0")][0] == \
            ipaddress.ip_interface(result["ips"][0]["address"]).ip
        assert h.delete(cid, ns) is None
        assert pod_interfaces(h.vpp) == {} and host_links() == set()


def test_gc_detaches_what_the_runtime_no_longer_knows(pods: Pods) -> None:
    from vppagent.cni.pb import cni_backend_pb2 as pb

    with running_agent() as h:
        keep_ns, drop_ns = pods.netns(1), pods.netns(2)
        keep, drop = container_id(1), container_id(2)
        assert h.add(keep, keep_ns)[1] is None and h.add(drop, drop_ns)[1] is None
        reply = h.stub().Gc(pb.GcRequest(config=b"{}", valid_attachments=[
            pb.Attachment(container_id=keep, ifname="eth0")]), timeout=30)
        assert not reply.HasField("error")
        tags = set(pod_interfaces(h.vpp))
        assert tags == {pod_interface_kind.TAG_PREFIX + pod_interface_kind.interface_name(keep, "eth0")}
        assert set(h.agent.pod_network.ipam.allocations()) == {(keep, "eth0")}


def test_check_reports_what_drifted(pods: Pods) -> None:
    with running_agent() as h:
        ns = pods.netns(1)
        cid = container_id(1)
        result, err = h.add(cid, ns)
        assert err is None
        assert h.check(cid, ns, prev_result=result) is None
        pods.exec(ns, "ip", "route", "del", "default")
        err = h.check(cid, ns, prev_result=result)
        assert err is not None and err.code == 104 and "default" in err.details
        assert h.check(container_id(7), ns).code == 3


def test_memif_annotation_adds_a_memif_interface_with_its_own_address(pods: Pods) -> None:
    with running_agent() as h:
        pod = k.pod("dpdk-app", node="node-1")
        pod["metadata"]["annotations"] = {"vppagent.io/memif": "true"}
        h.fake.add(pod)
        wait_for(lambda: ("default", "dpdk-app") in h.agent.pod_network._pods, 10, "the pod in the agent")
        ns = pods.netns(1)
        cid = container_id(1)
        result, err = h.add(cid, ns, pod="dpdk-app")
        assert err is None, err
        names = [i["name"] for i in result["interfaces"]]
        assert "memif0" in names
        memif_if = result["interfaces"][names.index("memif0")]
        assert memif_if["socketPath"] == "abstract:vppagent/memif0"
        assert len(result["ips"]) == 2
        m = memif.dump(h.vpp)
        assert len(m) == 1
        files = {s.socket_id: s.filename for s in memif.sockets(h.vpp)}
        assert files[m[0].socket_id] == f"abstract:vppagent/memif0,netns_name={ns}"
        assert len(pod_routes(h.vpp)) == 2
        assert h.delete(cid, ns, pod="dpdk-app") is None
        assert memif.dump(h.vpp) == [] and pod_routes(h.vpp) == set()
        assert all(s.filename != files[m[0].socket_id] for s in memif.sockets(h.vpp))


def test_tun_driver_puts_vpp_tun_in_the_pod_and_removes_it(pods: Pods) -> None:
    from vppagent.vpp import tap

    with running_agent(pod_interface="tun") as h:
        ns = pods.netns(1)
        cid = container_id(1)
        result, err = h.add(cid, ns)
        assert err is None, err
        addr = ipaddress.ip_interface(result["ips"][0]["address"])
        taps = tap.dump(h.vpp)
        assert len(taps) == 1 and taps[0].host_if_name == "eth0" and taps[0].host_namespace == ns
        link = json.loads(pods.exec(ns, "ip", "-j", "-d", "link", "show", "eth0").stdout)[0]
        assert link["linkinfo"]["info_kind"] == "tun" and link["mtu"] == 1440
        assert str(addr.ip) in pods.exec(ns, "ip", "addr", "show", "eth0").stdout
        assert "default via 169.254.1.1" in pods.exec(ns, "ip", "route").stdout
        assert pod_routes(h.vpp) == {f"{addr.ip}/32"}
        assert host_links() == set()  # no veth with tun
        assert h.check(cid, ns, prev_result=result) is None
        assert h.delete(cid, ns) is None
        assert tap.dump(h.vpp) == [] and pod_routes(h.vpp) == set()
        assert pods.exec(ns, "ip", "link", "show", "eth0").returncode != 0


def test_start_after_a_crash_mid_add_frees_the_address_and_the_stray_veth(tmp_path) -> None:
    from vppagent.cni.ipam import Ipam

    state = tmp_path / "state"
    cid = container_id(1)
    # What a crash after IPAM and the veth, before the attachment record, leaves.
    with Ipam(state / "ipam") as ipam:
        ipam.set_ranges(["10.244.1.0/24"])
        ipam.allocate(cid, "eth0")
    stray = pod_interface_kind.host_ifname(cid, "eth0")
    subprocess.run(["ip", "link", "add", stray, "type", "veth", "peer", "name", "vpy" + cid[-8:]], check=True)
    try:
        with running_agent(state_dir=str(state)) as h:
            assert h.agent.pod_network.ipam.allocations() == {}
            assert stray not in host_links()
    finally:
        subprocess.run(["ip", "link", "del", stray], check=False, capture_output=True)


def test_the_agents_own_netns_is_never_a_pod_and_a_reused_netns_path_is_left_alone(pods: Pods) -> None:
    with running_agent() as h:
        _, err = h.add(container_id(1), f"/proc/{os.getpid()}/ns/net")
        assert err is not None and err.code == 4 and "own network namespace" in err.msg
        assert pod_interfaces(h.vpp) == {} and h.agent.pod_network.ipam.allocations() == {}

        ns = pods.netns(2)
        cid = container_id(2)
        assert h.add(cid, ns)[1] is None
        # The runtime removed the pod's netns; a new namespace now has the same path
        # (as a reused PID would with /proc/PID/ns/net), with an eth0 of its own.
        pods.drop(ns)
        name = os.path.basename(ns)
        subprocess.run(["ip", "netns", "add", name], check=True)
        pods.exec(ns, "ip", "link", "add", "eth0", "type", "dummy")  # may be unsupported: then a veth
        if pods.exec(ns, "ip", "link", "show", "eth0").returncode != 0:
            pods.exec(ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
        assert pods.exec(ns, "ip", "link", "show", "eth0").returncode == 0
        assert h.delete(cid, ns) is None
        assert pods.exec(ns, "ip", "link", "show", "eth0").returncode == 0  # not ours: untouched
        assert pod_interfaces(h.vpp) == {} and host_links() == set()


def test_a_memif_annotation_that_is_not_a_boolean_is_reported_and_gives_no_memif(pods: Pods, caplog) -> None:
    # Reported as every refused input is: a warning here, and an Event where the agent has a
    # recorder (the path tests/agent covers); this harness has none, so the log is checked.
    caplog.set_level(logging.WARNING, logger="vppagent.agent")
    with running_agent() as h:
        pod = k.pod("dpdk-app", node="node-1")
        pod["metadata"]["annotations"] = {"vppagent.io/memif": "maybe"}
        h.fake.add(pod)
        wait_for(lambda: any(getattr(r, "reason", "") == "InvalidMemifAnnotation" for r in caplog.records), 10,
                 "the problem reported")
        assert any("'maybe'" in r.getMessage() for r in caplog.records)
        ns, cid = pods.netns(1), container_id(1)
        result, err = h.add(cid, ns, pod="dpdk-app")
        assert err is None, err
        assert "memif0" not in [i["name"] for i in result["interfaces"]] and memif.dump(h.vpp) == []
        assert h.delete(cid, ns, pod="dpdk-app") is None
