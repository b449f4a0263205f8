"""The plugin forwards each command over real gRPC and prints the agent's answer as the spec says."""
from __future__ import annotations

import json

import grpc
import pytest

from testbed.fake_cni_agent import SPEC_RESULT
from vppagent.cni import plugin
from vppagent.cni.pb import cni_backend_pb2 as pb
from vppagent.cni.plugin import handle

from .conftest import cni_env, dumps, spec_netconf

# The spec's example of a result another plugin (bridge) produced before us in a chain.
BRIDGE_PREV_040 = {
    "cniVersion": "0.4.0",
    "interfaces": [{"name": "cni0", "mac": "00:11:22:33:44:55"},
                   {"name": "veth3243", "mac": "55:44:33:22:11:11"}],
    "ips": [{"version": "4", "address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 1}],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dns": {"nameservers": ["10.1.0.1"], "search": ["svc.cluster.local"]},
}


def test_add_forwards_the_invocation_and_prints_the_result(agent):
    raw = dumps(spec_netconf(agent.socket))
    out = handle(cni_env("ADD"), raw)
    assert out.exit_code == 0, out.document
    assert out.document == {**SPEC_RESULT, "cniVersion": "1.1.0"}
    (req,) = agent.calls("Add")
    assert (req.container_id, req.netns, req.ifname, req.args) == (
        "3e1a8c09f2b4", "/var/run/netns/blue", "eth0",
        "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0")
    assert req.config == raw  # the agent sees the netconf exactly as the runtime sent it


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0"])
def test_add_result_for_old_versions_tags_each_ip_with_its_family(agent, version):
    agent.reply("Add", pb.AddReply(result=dumps({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0", "mac": "02:fe:00:00:00:01", "sandbox": "/var/run/netns/b",
                        "mtu": 1450}],
        "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 0},
                {"address": "fd00::5/64", "interface": 0}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1", "mtu": 1400}],
    })))
    out = handle(cni_env("ADD"), dumps(spec_netconf(agent.socket, cniVersion=version)))
    assert out.exit_code == 0
    assert out.document == {
        "cniVersion": version,
        "interfaces": [{"name": "eth0", "mac": "02:fe:00:00:00:01", "sandbox": "/var/run/netns/b"}],
        "ips": [{"version": "4", "address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 0},
                {"version": "6", "address": "fd00::5/64", "interface": 0}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}],
    }


def test_add_result_for_1_0_0_is_the_agents_result(agent):
    out = handle(cni_env("ADD"), dumps(spec_netconf(agent.socket, cniVersion="1.0.0")))
    assert out.document == SPEC_RESULT


def test_chained_add_appends_after_prev_result_and_shifts_interface_indexes(agent):
    agent.reply("Add", pb.AddReply(result=dumps({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth1", "sandbox": "/var/run/netns/blue"}],
        "ips": [{"address": "10.2.0.7/24", "interface": 0}],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.96.0.0/12", "gw": "10.2.0.1"}],
        "dns": {"nameservers": ["10.96.0.10", "10.1.0.1"], "domain": "cluster.local"},
    })))
    conf = spec_netconf(agent.socket, cniVersion="0.4.0", prevResult=BRIDGE_PREV_040)
    out = handle(cni_env("ADD", CNI_IFNAME="eth1"), dumps(conf))
    assert out.exit_code == 0, out.document
    doc = out.document
    assert doc["cniVersion"] == "0.4.0"
    assert [i["name"] for i in doc["interfaces"]] == ["cni0", "veth3243", "eth1"]
    assert doc["ips"] == [
        {"version": "4", "address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 1},
        {"version": "4", "address": "10.2.0.7/24", "interface": 2},
    ]
    assert doc["routes"] == [{"dst": "0.0.0.0/0"}, {"dst": "10.96.0.0/12", "gw": "10.2.0.1"}]
    assert doc["dns"] == {"nameservers": ["10.1.0.1", "10.96.0.10"],
                          "search": ["svc.cluster.local"], "domain": "cluster.local"}


def test_agent_cni_error_is_printed_verbatim_with_the_request_version(agent):
    agent.cni_error("Add", 11, "try again later", "IPAM pool 10.1.0.0/16 is exhausted")
    out = handle(cni_env("ADD"), dumps(spec_netconf(agent.socket, cniVersion="0.3.1")))
    assert out.exit_code == 1
    assert out.document == {"cniVersion": "0.3.1", "code": 11, "msg": "try again later",
                            "details": "IPAM pool 10.1.0.0/16 is exhausted"}


@pytest.mark.parametrize("reply,what", [
    (pb.AddReply(), "neither a result nor an error"),
    (pb.AddReply(result=b"{truncated"), "invalid result"),
    (pb.AddReply(result=b"[1, 2]"), "invalid result"),
    (pb.AddReply(result=dumps({"ips": [{"address": "10.0.0.1/8", "interface": 3}]})),
     "invalid result"),
    (pb.AddReply(error=pb.CniError(code=0, msg="oops")), "without a code"),
])
def test_a_malformed_agent_reply_is_code_102(agent, reply, what):
    agent.reply("Add", reply)
    out = handle(cni_env("ADD"), dumps(spec_netconf(agent.socket)))
    assert (out.exit_code, out.document["code"]) == (1, 102)
    assert what in out.document["msg"]


def test_del_of_an_unknown_container_without_netns_succeeds_silently(agent):
    out = handle(cni_env("DEL", CNI_NETNS=None, CNI_CONTAINERID="never-added"),
                 dumps(spec_netconf(agent.socket)))
    assert (out.exit_code, out.document) == (0, None)
    (req,) = agent.calls("Del")
    assert (req.container_id, req.netns) == ("never-added", "")


def test_del_ignores_a_malformed_prev_result_so_clean_up_goes_through(agent):
    conf = spec_netconf(agent.socket, prevResult={"ips": [{"address": "garbage"}]})
    out = handle(cni_env("DEL"), dumps(conf))
    assert (out.exit_code, out.document) == (0, None)
    assert len(agent.calls("Del")) == 1


def test_check_passes_prev_result_in_1_0_0_form(agent):
    conf = spec_netconf(agent.socket, cniVersion="0.4.0", prevResult=BRIDGE_PREV_040)
    out = handle(cni_env("CHECK"), dumps(conf))
    assert (out.exit_code, out.document) == (0, None)
    (req,) = agent.calls("Check")
    prev = json.loads(req.prev_result)
    assert prev["cniVersion"] == "1.0.0"
    assert prev["ips"] == [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 1}]
    assert prev["interfaces"] == BRIDGE_PREV_040["interfaces"]


def test_check_failure_from_agent_is_reported(agent):
    agent.cni_error("Check", 7, "pod interface eth0 is missing", "netns /var/run/netns/blue")
    conf = spec_netconf(agent.socket, prevResult=SPEC_RESULT)
    out = handle(cni_env("CHECK"), dumps(conf))
    assert (out.exit_code, out.document["code"], out.document["msg"]) == (
        1, 7, "pod interface eth0 is missing")


def test_status_ready_prints_nothing(agent):
    raw = dumps(spec_netconf(agent.socket))
    out = handle({"CNI_COMMAND": "STATUS"}, raw)
    assert (out.exit_code, out.document) == (0, None)
    assert agent.calls("Status")[0].config == raw


def test_status_not_ready_is_the_agents_error(agent):
    agent.cni_error("Status", 51, "no networks available", "VPP is restarting")
    out = handle({"CNI_COMMAND": "STATUS"}, dumps(spec_netconf(agent.socket)))
    assert (out.exit_code, out.document["code"], out.document["details"]) == (
        1, 51, "VPP is restarting")


def test_status_without_agent_is_plugin_not_available(tmp_path):
    out = handle({"CNI_COMMAND": "STATUS"}, dumps(spec_netconf(str(tmp_path / "gone.sock"))))
    assert (out.exit_code, out.document["code"]) == (1, 50)
    assert str(tmp_path / "gone.sock") in out.document["details"]


def test_gc_sends_the_valid_attachments(agent):
    conf = spec_netconf(agent.socket, **{"cni.dev/valid-attachments": [
        {"containerID": "aaa", "ifname": "eth0"}, {"containerID": "bbb", "ifname": "net1"}]})
    out = handle({"CNI_COMMAND": "GC", "CNI_PATH": "/opt/cni/bin"}, dumps(conf))
    assert (out.exit_code, out.document) == (0, None)
    (req,) = agent.calls("Gc")
    assert [(a.container_id, a.ifname) for a in req.valid_attachments] == [("aaa", "eth0"),
                                                                           ("bbb", "net1")]


def test_gc_with_an_empty_list_is_forwarded(agent):
    conf = spec_netconf(agent.socket, **{"cni.dev/valid-attachments": []})
    out = handle({"CNI_COMMAND": "GC"}, dumps(conf))
    assert out.exit_code == 0
    assert list(agent.calls("Gc")[0].valid_attachments) == []


@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK", "GC"])
def test_missing_agent_socket_is_code_100_with_the_path(tmp_path, command):
    socket = str(tmp_path / "cni.sock")
    conf = spec_netconf(socket, prevResult=SPEC_RESULT,
                        **{"cni.dev/valid-attachments": []})
    out = handle(cni_env(command), dumps(conf))
    assert (out.exit_code, out.document["code"]) == (1, 100)
    assert out.document["msg"] == "vppagent unreachable"
    assert socket in out.document["details"] and "UNAVAILABLE" in out.document["details"]


def test_socket_file_without_listener_is_code_100(tmp_path):
    import socket as so
    path = str(tmp_path / "dead.sock")
    s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
    s.bind(path)  # bound, never listening: connection refused
    try:
        out = handle(cni_env("ADD"), dumps(spec_netconf(path)))
    finally:
        s.close()
    assert (out.exit_code, out.document["code"]) == (1, 100)


def test_agent_aborting_unavailable_is_code_100(agent):
    agent.abort("Add", grpc.StatusCode.UNAVAILABLE, "agent is shutting down")
    out = handle(cni_env("ADD"), dumps(spec_netconf(agent.socket)))
    assert (out.exit_code, out.document["code"]) == (1, 100)
    assert "agent is shutting down" in out.document["details"]


def test_agent_crashing_in_a_call_is_code_100_naming_the_status(agent):
    agent.raise_in("Del", RuntimeError("boom"))
    out = handle(cni_env("DEL"), dumps(spec_netconf(agent.socket)))
    assert (out.exit_code, out.document["code"]) == (1, 100)
    assert "UNKNOWN" in out.document["msg"]


def test_slow_agent_hits_the_deadline_from_timeout_seconds(agent):
    agent.stall("Add", 10)
    out = handle(cni_env("ADD"), dumps(spec_netconf(agent.socket, timeoutSeconds=0.3)))
    assert (out.exit_code, out.document["code"]) == (1, 100)
    assert "timed out after 0.3 s" in out.document["msg"]
    assert "DEADLINE_EXCEEDED" in out.document["details"]


def test_unexpected_exception_is_code_101_not_a_traceback(agent, monkeypatch):
    def explode(*a, **kw):
        raise KeyError("surprise")
    monkeypatch.setattr(plugin, "_add_result", explode)
    out = handle(cni_env("ADD"), dumps(spec_netconf(agent.socket)))
    assert (out.exit_code, out.document["code"]) == (1, 101)
    assert "KeyError" in out.document["details"] and "surprise" in out.document["details"]


def test_a_netconf_larger_than_the_agent_takes_is_a_final_error_not_code_100(agent):
    # 5 MB of prevResult-like padding: over gRPC's 4 MiB message limit
    doc = spec_netconf(agent.socket, padding="x" * (5 << 20))
    out = handle(cni_env("ADD"), dumps(doc))
    assert (out.exit_code, out.document["code"]) == (1, plugin.ERR_INVALID_NETCONF), out.document
    assert "too large" in out.document["msg"] and agent.calls("Add") == []


def test_the_agent_refusing_the_size_is_final_too(agent):
    agent.abort("Add", grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max")
    out = handle(cni_env("ADD"), dumps(spec_netconf(agent.socket)))
    assert (out.exit_code, out.document["code"]) == (1, plugin.ERR_INVALID_NETCONF), out.document
