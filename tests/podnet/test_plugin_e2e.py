"""The ``vppagent-cni`` executable invoked as the CNI spec describes, against a running agent.

Each call is a fresh process with the CNI_* variables in its environment
and the network configuration on stdin, exactly as a runtime execs it; the
agent behind it is the real one (emulator, or a real VPP for the traffic
test). Outcomes are checked where they land: the printed document, the
pod netns, VPP, the node's veth host ends and the agent's IPAM.
"""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from pathlib import Path

import pytest

from testbed.podnet import Pods, container_id, host_links, running_agent
from testbed.targets import real_vpp_reason
from vppagent.cni import pod_interface_kind
from vppagent.vpp import interfaces

pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")]

PLUGIN = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "vppagent-cni"
POD_CIDR = ipaddress.ip_network("10.244.1.0/24")


@pytest.fixture
def pods():
    p = Pods()
    yield p
    p.close()


def invoke(command: str, conf: dict | bytes, *, cid: str = "", netns: str = "", ifname: str = "eth0",
           pod: str = "p") -> tuple[int, dict | None]:
    """Exit code and the one JSON document the plugin printed (None when it printed nothing)."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command, "CNI_PATH": str(PLUGIN.parent)}
    if command in ("ADD", "DEL", "CHECK"):
        env.update(CNI_CONTAINERID=cid, CNI_NETNS=netns, CNI_IFNAME=ifname,
                   CNI_ARGS=f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod}")
    stdin = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
    done = subprocess.run([str(PLUGIN)], input=stdin, env=env, capture_output=True, timeout=60)
    out = done.stdout.decode().strip()
    return done.returncode, (json.loads(out) if out else None)


def netconf(socket: str, version: str = "1.0.0", **extra: object) -> dict:
    return {"cniVersion": version, "name": "vppagent", "type": "vppagent-cni",
            "agentSocket": socket, "timeoutSeconds": 20, **extra}


def pod_tags(vpp) -> set[str]:
    return {i.tag for i in interfaces.dump(vpp) if i.tag.startswith(pod_interface_kind.TAG_PREFIX)}


def tag(cid: str) -> str:
    return pod_interface_kind.TAG_PREFIX + pod_interface_kind.interface_name(cid, "eth0")


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_add_check_del_through_the_executable(pods: Pods, version: str) -> None:
    with running_agent() as h:
        before = host_links()
        ns, cid = pods.netns(1), container_id(1)
        conf = netconf(h.cni_socket, version)
        code, result = invoke("ADD", conf, cid=cid, netns=ns)
        assert code == 0, result
        assert result["cniVersion"] == version
        addr = ipaddress.ip_interface(result["ips"][0]["address"])
        assert addr.ip in POD_CIDR and "version" not in result["ips"][0]
        assert result["interfaces"][result["ips"][0]["interface"]] == {
            **result["interfaces"][result["ips"][0]["interface"]], "name": "eth0", "sandbox": ns}
        assert {"dst": "0.0.0.0/0", "gw": "169.254.1.1"} in result["routes"]
        assert str(addr.ip) in pods.exec(ns, "ip", "-o", "addr", "show", "eth0").stdout
        assert h.agent.pod_network.ipam.allocations() == {(cid, "eth0"): (addr.ip,)}
        assert pod_tags(h.vpp) == {tag(cid)}

        # CHECK gets the ADD's result as prevResult, succeeds silently, then sees drift.
        code, doc = invoke("CHECK", netconf(h.cni_socket, version, prevResult=result), cid=cid, netns=ns)
        assert (code, doc) == (0, None)
        pods.exec(ns, "ip", "route", "del", "default")
        code, doc = invoke("CHECK", netconf(h.cni_socket, version, prevResult=result), cid=cid, netns=ns)
        assert code == 1 and doc["code"] == 104 and doc["cniVersion"] == version

        code, doc = invoke("DEL", conf, cid=cid, netns=ns)
        assert (code, doc) == (0, None)
        assert pod_tags(h.vpp) == set() and h.agent.pod_network.ipam.allocations() == {}
        assert host_links() == before
        assert pods.exec(ns, "ip", "link", "show", "eth0").returncode != 0
        # DEL again, and DEL with the netns already gone (the runtime's order may vary): success.
        pods.drop(ns)
        assert invoke("DEL", conf, cid=cid, netns=ns) == (0, None)
        assert invoke("DEL", conf, cid=cid, netns="") == (0, None)


def test_a_0_4_0_caller_gets_a_0_4_0_result(pods: Pods) -> None:
    with running_agent() as h:
        ns, cid = pods.netns(1), container_id(1)
        conf = netconf(h.cni_socket, "0.4.0")
        code, result = invoke("ADD", conf, cid=cid, netns=ns)
        assert code == 0, result
        assert result["cniVersion"] == "0.4.0"
        assert result["ips"][0]["version"] == "4"
        assert ipaddress.ip_interface(result["ips"][0]["address"]).ip in POD_CIDR
        assert all(set(i) <= {"name", "mac", "sandbox"} for i in result["interfaces"])
        assert all(set(r) <= {"dst", "gw"} for r in result["routes"])
        assert invoke("CHECK", {**conf, "prevResult": result}, cid=cid, netns=ns) == (0, None)
        assert invoke("DEL", conf, cid=cid, netns=ns) == (0, None)
        assert pod_tags(h.vpp) == set()


def test_version_status_and_gc(pods: Pods, tmp_path) -> None:
    code, doc = invoke("VERSION", {"cniVersion": "1.1.0"})
    assert code == 0 and doc["cniVersion"] == "1.1.0"
    assert {"0.4.0", "1.0.0", "1.1.0"} <= set(doc["supportedVersions"])

    code, doc = invoke("STATUS", netconf(str(tmp_path / "absent.sock"), "1.1.0"))
    assert code == 1 and doc["code"] == 50  # plugin not available: no agent

    with running_agent() as h:
        assert invoke("STATUS", netconf(h.cni_socket, "1.1.0")) == (0, None)
        keep, drop = container_id(1), container_id(2)
        for n, cid in ((1, keep), (2, drop)):
            code, result = invoke("ADD", netconf(h.cni_socket, "1.1.0"), cid=cid, netns=pods.netns(n))
            assert code == 0, result
        code, doc = invoke("GC", netconf(h.cni_socket, "1.1.0", **{
            "cni.dev/valid-attachments": [{"containerID": keep, "ifname": "eth0"}]}))
        assert (code, doc) == (0, None)
        assert pod_tags(h.vpp) == {tag(keep)}
        assert set(h.agent.pod_network.ipam.allocations()) == {(keep, "eth0")}
        assert pod_interface_kind.host_ifname(drop, "eth0") not in host_links()

        # GC is a 1.1.0 verb: a 1.0.0 configuration may not ask for it.
        code, doc = invoke("GC", netconf(h.cni_socket, "1.0.0", **{"cni.dev/valid-attachments": []}))
        assert code == 1 and doc["code"] == 1
        assert pod_tags(h.vpp) == {tag(keep)}


def test_error_paths_print_spec_errors_and_leave_nothing(pods: Pods, tmp_path) -> None:
    ns = pods.netns(1)
    before = host_links()
    code, doc = invoke("ADD", netconf(str(tmp_path / "absent.sock")), cid=container_id(1), netns=ns)
    assert code == 1 and doc["code"] == 100 and doc["cniVersion"] == "1.0.0"
    assert "absent.sock" in doc["details"]

    with running_agent() as h:
        bad = {"cniVersion": "1.0.0", "type": "vppagent-cni", "agentSocket": h.cni_socket}  # no name
        code, doc = invoke("ADD", bad, cid=container_id(2), netns=ns)
        assert code == 1 and doc["code"] == 7 and "name" in doc["msg"]
        code, doc = invoke("ADD", netconf(h.cni_socket, timeoutSeconds=-1), cid=container_id(2), netns=ns)
        assert code == 1 and doc["code"] == 7
        code, doc = invoke("ADD", b"{not json", cid=container_id(2), netns=ns)
        assert code == 1 and doc["code"] == 6
        code, doc = invoke("ADD", netconf(h.cni_socket, "9.9.9"), cid=container_id(2), netns=ns)
        assert code == 1 and doc["code"] == 1
        code, doc = invoke("ADD", netconf(h.cni_socket), cid=container_id(2), netns="/var/run/netns/absent-x")
        assert code == 1 and doc["code"] == 3
        code, doc = invoke("ADD", netconf(h.cni_socket), cid=container_id(2), netns=ns, ifname="a/b")
        assert code == 1 and doc["code"] == 4
        assert pod_tags(h.vpp) == set()
        assert h.agent.pod_network.ipam.allocations() == {}
        assert host_links() == before
        assert pods.exec(ns, "ip", "link", "show", "eth0").returncode != 0


_real = pytest.mark.skipif(real_vpp_reason() is not None or not os.environ.get("VPPAGENT_VPP_BIN"),
                           reason=real_vpp_reason() or "needs VPPAGENT_VPP_BIN (a private VPP)")


@pytest.mark.real_vpp
@_real
def test_two_directly_invoked_pods_ping_each_other_through_vpp(pods: Pods) -> None:
    with running_agent(vpp_bin=os.environ["VPPAGENT_VPP_BIN"]) as h:
        before = host_links()
        conf = netconf(h.cni_socket)
        a_ns, b_ns = pods.netns(1), pods.netns(2)
        a_cid, b_cid = container_id(1), container_id(2)
        code, a = invoke("ADD", conf, cid=a_cid, netns=a_ns, pod="a")
        assert code == 0, a
        code, b = invoke("ADD", conf, cid=b_cid, netns=b_ns, pod="b")
        assert code == 0, b
        a_ip = str(ipaddress.ip_interface(a["ips"][0]["address"]).ip)
        b_ip = str(ipaddress.ip_interface(b["ips"][0]["address"]).ip)
        for ns, peer in ((a_ns, b_ip), (b_ns, a_ip)):
            ping = pods.exec(ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", peer)
            assert ping.returncode == 0 and " 0% packet loss" in ping.stdout, ping.stdout + ping.stderr
        assert invoke("DEL", conf, cid=a_cid, netns=a_ns) == (0, None)
        assert invoke("DEL", conf, cid=b_cid, netns=b_ns) == (0, None)
        assert pod_tags(h.vpp) == set() and host_links() == before
