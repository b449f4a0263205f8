"""The CNI executable answers as the spec says, also for what it cannot do yet."""
from __future__ import annotations

import json
import os
import subprocess
import sys


def run(command: str | None, stdin: str = "") -> tuple[int, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    if command:
        env["CNI_COMMAND"] = command
    r = subprocess.run([sys.executable, "-m", "vppagent.cni.plugin"], input=stdin, env=env,
                       capture_output=True, text=True, timeout=30)
    return r.returncode, json.loads(r.stdout)


def test_version_lists_supported_spec_versions():
    code, doc = run("VERSION")
    assert code == 0
    assert doc["cniVersion"] == "1.0.0"
    assert "1.0.0" in doc["supportedVersions"] and "0.4.0" in doc["supportedVersions"]


def test_add_is_refused_with_a_spec_error_not_a_crash():
    code, doc = run("ADD", json.dumps({"cniVersion": "1.0.0", "name": "k8s", "type": "vppagent-cni"}))
    assert code == 1
    assert doc["code"] == 100 and "ADD is not implemented" in doc["msg"]


def test_malformed_netconf_is_a_decode_error():
    code, doc = run("DEL", "{not json")
    assert (code, doc["code"]) == (1, 6)


def test_missing_command_is_an_invalid_environment():
    code, doc = run(None)
    assert (code, doc["code"]) == (1, 4)
