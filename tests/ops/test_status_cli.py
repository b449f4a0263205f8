"""The status socket and ``vppagent status|show`` against a running agent on the emulator.

The emulator is a test double of VPP (real socket protocol); the Kubernetes API is
the fake server (real HTTP). Nothing here is mocked between the CLI and the agent.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import socket
import stat
from pathlib import Path

import pytest

from testbed.targets import api_dir
from tests.ops.conftest import NODE, OpsAgent, wait_for
from vppagent import opscli
from vppagent.ops.status_server import StatusFailed, StatusServer, StatusServerError, StatusUnreachable, fetch


def cli(*argv: str) -> tuple[int, str, str]:
    ap_args = argparse.ArgumentParser()
    opscli.add_commands(ap_args.add_subparsers(dest="cmd", required=True))
    args = ap_args.parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    rc = opscli.run(args, out, err)
    return rc, out.getvalue(), err.getvalue()


def sockets(h: OpsAgent) -> list[str]:
    return ["--status-socket", h.status_socket, "--vpp-socket", h.vpp_socket,
            "--api-dir", api_dir(), "--timeout", "5"]


# -- the server on its own ----------------------------------------------------------------------


def test_socket_is_0600_and_answers_json(tmp_path: Path) -> None:
    path = str(tmp_path / "d" / "status.sock")
    with StatusServer(path, lambda: {"ok": 1}, lambda t: [{"topic": t}]):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        assert fetch(path, "/v1/status") == {"ok": 1}
        assert fetch(path, "/v1/show/peers") == [{"topic": "peers"}]
        with pytest.raises(StatusFailed) as e:
            fetch(path, "/v1/show/bogus")
        assert e.value.code == 404 and "known" in e.value.error
    assert not os.path.exists(path), "stop() removes the socket"


def test_a_failing_view_is_a_500_and_the_server_keeps_serving(tmp_path: Path) -> None:
    def boom(topic: str) -> None:
        raise ValueError(f"broken {topic}")

    path = str(tmp_path / "status.sock")
    with StatusServer(path, lambda: {"ok": 1}, boom):
        with pytest.raises(StatusFailed) as e:
            fetch(path, "/v1/show/pods")
        assert e.value.code == 500 and "broken pods" in e.value.error
        assert fetch(path, "/v1/status") == {"ok": 1}


def test_stale_socket_is_replaced_and_a_live_one_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "status.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: a crashed agent's leftover
    with StatusServer(path, lambda: {"n": 1}, lambda t: []):
        assert fetch(path, "/v1/status") == {"n": 1}
        with pytest.raises(StatusServerError, match="another process"):
            StatusServer(path, lambda: {"n": 2}, lambda t: []).start()
        assert fetch(path, "/v1/status") == {"n": 1}, "the live server was not disturbed"


def test_fetch_names_why_the_agent_is_unreachable(tmp_path: Path) -> None:
    with pytest.raises(StatusUnreachable, match="does not exist"):
        fetch(str(tmp_path / "none.sock"), "/v1/status")
    dead = str(tmp_path / "dead.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(dead)
    s.close()
    with pytest.raises(StatusUnreachable, match="refused"):
        fetch(dead, "/v1/status")


# -- against a running agent ------------------------------------------------------------------------


def test_status_reads_agent_and_vpp(ops_agent: OpsAgent) -> None:
    rc, out, err = cli("status", "-o", "json", *sockets(ops_agent))
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["unreachable"] == {}
    a = doc["agent"]
    assert a["node"] == NODE and a["ready"] and a["vpp"]["connected"]
    assert a["reconcile"]["passes"] >= 1 and a["reconcile"]["applied"] == a["reconcile"]["desired"] > 0
    assert a["counts"] == {"pods": 0, "services": 2, "policies": 0, "peers": 2}
    assert doc["vpp"]["interfaces"][0]["name"] == "local0"
    rc, out, _ = cli("status", *sockets(ops_agent))
    assert rc == 0 and f"node:        {NODE}" in out and "ready (ready)" in out


def test_show_services_and_peers_as_table_and_json(ops_agent: OpsAgent) -> None:
    rc, out, err = cli("show", "services", "-o", "json", *sockets(ops_agent))
    assert rc == 0, err
    rows = json.loads(out)["data"]
    assert [(r["name"], r["cluster_ips"], r["ready_endpoints"]) for r in rows] == [
        ("s0", ["10.96.0.10"], 3), ("s1", ["10.96.0.11"], 3)]
    assert rows[0]["ports"] == ["80/TCP", "53/UDP"]
    rc, out, _ = cli("show", "peers", *sockets(ops_agent))
    lines = out.splitlines()
    assert rc == 0 and lines[0].split() == ["NODE", "INTERNAL_IPS", "POD_CIDRS", "ENCRYPTION"]
    assert lines[1].split() == ["node-2", "192.168.0.2", "10.244.2.0/24", "none"]


def test_encryption_follows_node_annotations(ops_agent: OpsAgent) -> None:
    ann = "vppagent.io/encryption"
    ops_agent.fake.patch("Node", NODE, {"metadata": {"annotations": {ann: "wireguard"}}})
    ops_agent.fake.patch("Node", "node-2", {"metadata": {"annotations": {ann: "wireguard"}}})
    ops_agent.fake.patch("Node", "node-3", {"metadata": {"annotations": {ann: "ipsec"}}})

    def rows() -> list[dict]:
        rc, out, _ = cli("show", "encryption", "-o", "json", *sockets(ops_agent))
        assert rc == 0
        return json.loads(out)["data"]

    want = [{"peer": "node-2", "local": "wireguard", "remote": "wireguard", "effective": "wireguard"},
            {"peer": "node-3", "local": "wireguard", "remote": "ipsec", "effective": "none"}]
    wait_for(lambda: rows() == want, 10, "the annotations to reach the agent")


def test_vpp_unreachable_is_named_and_agent_data_still_shown(ops_agent: OpsAgent, tmp_path: Path) -> None:
    args = sockets(ops_agent)
    args[args.index("--vpp-socket") + 1] = str(tmp_path / "gone.sock")
    rc, out, err = cli("status", *args)
    assert rc == 1
    assert f"vppagent status: vpp unreachable at {tmp_path / 'gone.sock'}" in err
    assert "agent" not in err.replace("vppagent status", "")
    assert f"node:        {NODE}" in out


def test_agent_unreachable_is_named_and_vpp_data_still_shown(ops_agent: OpsAgent, tmp_path: Path) -> None:
    args = sockets(ops_agent)
    args[args.index("--status-socket") + 1] = str(tmp_path / "nostatus.sock")
    rc, out, err = cli("status", "-o", "json", *args)
    assert rc == 1
    doc = json.loads(out)
    assert doc["agent"] is None and doc["vpp"]["interfaces"]
    assert set(doc["unreachable"]) == {"agent"} and "does not exist" in doc["unreachable"]["agent"]
    assert "vppagent status: agent unreachable at" in err
    rc, out, err = cli("show", "services", *args)
    assert rc == 1 and out == "" and "agent unreachable" in err


def test_vpp_socket_nobody_listens_on_and_bad_definitions_are_named(ops_agent: OpsAgent, tmp_path: Path) -> None:
    stale = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(stale)
    s.close()
    args = sockets(ops_agent)
    args[args.index("--vpp-socket") + 1] = stale
    rc, _, err = cli("show", "peers", *args)
    assert rc == 1 and f"vpp unreachable at {stale}" in err and "agent" not in err.replace("vppagent show", "")
    args = sockets(ops_agent)
    args[args.index("--api-dir") + 1] = str(tmp_path / "no-defs")
    rc, out, err = cli("show", "peers", *args)
    assert rc == 1 and "cannot load VPP's API definitions" in err and "node-2" in out
