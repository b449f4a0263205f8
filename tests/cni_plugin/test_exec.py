"""The installed ``vppagent-cni`` executable, run as a runtime runs it, against a real gRPC agent."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.fake_cni_agent import SPEC_RESULT

from .conftest import cni_env, dumps, spec_netconf

REPO = Path(__file__).resolve().parents[2]
ENTRY_POINT = Path(sys.executable).parent / "vppagent-cni"


def plugin_cmd() -> list[str]:
    if ENTRY_POINT.exists():
        return [str(ENTRY_POINT)]
    return [sys.executable, "-m", "vppagent.cni.plugin"]


def run(env: dict[str, str], stdin: bytes = b"", cmd: list[str] | None = None
        ) -> tuple[int, str, str]:
    # A runtime hands the plugin only the CNI variables and a PATH.
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    r = subprocess.run(cmd or plugin_cmd(), input=stdin, env={**base, **env},
                       capture_output=True, timeout=60)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def one_document(stdout: str) -> dict:
    """Stdout holds exactly one JSON document (json.loads refuses trailing data)."""
    return json.loads(stdout)


def test_version_from_the_executable():
    # The spec's VERSION input: only the caller's cniVersion.
    code, out, _ = run({"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "1.0.0"}')
    assert code == 0
    assert one_document(out)["supportedVersions"] == ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


def test_python_dash_m_runs_the_same_plugin():
    code, out, _ = run({"CNI_COMMAND": "VERSION"},
                       cmd=[sys.executable, "-m", "vppagent.cni.plugin"])
    assert code == 0 and one_document(out)["cniVersion"] == "1.1.0"


def test_add_against_the_agent(agent):
    code, out, err = run(cni_env("ADD"), dumps(spec_netconf(agent.socket, cniVersion="1.0.0")))
    assert code == 0, err
    assert one_document(out) == SPEC_RESULT
    assert agent.calls("Add")[0].container_id == "3e1a8c09f2b4"


def test_del_prints_nothing_on_success(agent):
    code, out, err = run(cni_env("DEL", CNI_NETNS=""), dumps(spec_netconf(agent.socket)))
    assert (code, out) == (0, ""), err
    assert len(agent.calls("Del")) == 1


def test_agent_error_exits_1_with_the_error_document(agent):
    agent.cni_error("Add", 11, "try again later", "agent is resyncing")
    code, out, _ = run(cni_env("ADD"), dumps(spec_netconf(agent.socket)))
    assert code == 1
    assert one_document(out) == {"cniVersion": "1.1.0", "code": 11, "msg": "try again later",
                                 "details": "agent is resyncing"}


def test_missing_agent_socket(tmp_path):
    code, out, _ = run(cni_env("ADD"), dumps(spec_netconf(str(tmp_path / "cni.sock"))))
    doc = one_document(out)
    assert (code, doc["code"]) == (1, 100)
    assert str(tmp_path / "cni.sock") in doc["details"]


def test_deadline(agent):
    agent.stall("Add", 10)
    code, out, _ = run(cni_env("ADD"), dumps(spec_netconf(agent.socket, timeoutSeconds=0.5)))
    doc = one_document(out)
    assert (code, doc["code"]) == (1, 100)
    assert "timed out after 0.5 s" in doc["msg"]


@pytest.mark.parametrize("stdin,code", [(b"{oops", 6), (b'{"name": "x", "type": "y"}', 7),
                                        (dumps(spec_netconf(cniVersion="9.9.9")), 1)])
def test_bad_input_is_one_error_document_and_no_traceback(stdin, code):
    rc, out, err = run(cni_env("ADD"), stdin)
    assert (rc, one_document(out)["code"]) == (1, code)
    assert "Traceback" not in out + err


def test_version_and_validation_errors_do_not_import_grpc_or_the_agent():
    probe = (
        "import io, json, sys\n"
        "from vppagent.cni import plugin\n"
        "plugin.run({'CNI_COMMAND': 'VERSION'}, None, io.StringIO())\n"
        "plugin.run({'CNI_COMMAND': 'ADD'}, io.BytesIO(b'{bad'), io.StringIO())\n"
        "heavy = [m for m in ('grpc', 'google.protobuf', 'vpp_papi', 'kubernetes', 'pyroute2',\n"
        "         'vppagent.vpp', 'vppagent.agent') if m in sys.modules]\n"
        "print(json.dumps(heavy))\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                       cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []


def test_add_imports_grpc_but_nothing_else_of_the_agent(agent):
    probe = (
        "import io, json, sys, os\n"
        "from vppagent.cni import plugin\n"
        f"rc = plugin.run({cni_env('ADD')!r}, io.BytesIO(sys.stdin.buffer.read()), io.StringIO())\n"
        "heavy = [m for m in ('vpp_papi', 'kubernetes', 'pyroute2', 'vppagent.vpp',\n"
        "         'vppagent.agent', 'vppagent.cni.linux') if m in sys.modules]\n"
        "print(json.dumps([rc, 'grpc' in sys.modules, heavy]))\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], input=json.dumps(spec_netconf(agent.socket)),
                       capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [0, True, []]


def test_version_from_a_terminal_does_not_wait_for_input():
    import pty
    leader, follower = pty.openpty()
    try:
        # The terminal stays open: a plugin reading stdin would hang until the timeout.
        r = subprocess.run(plugin_cmd(), stdin=follower, capture_output=True, timeout=30,
                           env={"PATH": "/usr/bin:/bin", "CNI_COMMAND": "VERSION"})
    finally:
        os.close(follower)
        os.close(leader)
    assert r.returncode == 0
    assert one_document(r.stdout.decode())["cniVersion"] == "1.1.0"
