"""``make demo``'s command on this machine's emulator: it says it is not a real VPP, programs two
pods, and leaves VPP and the node as they were."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from testbed.targets import REPO

pytestmark = [pytest.mark.netns, pytest.mark.skipif(os.geteuid() != 0, reason="the demo needs root (netns, veth)")]


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_the_demo_runs_on_the_emulator_and_says_so() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VPPAGENT_VPP_BIN", "VPPAGENT_VPP_SOCKET")}
    before_ns, before_links = _netns(), _links()
    r = subprocess.run([sys.executable, "-m", "testbed.demo"], capture_output=True, text=True, timeout=120,
                       cwd=str(REPO), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "using the VPP API emulator" in r.stdout and "test double" in r.stdout
    assert "Pod a: netns vppagent-demo-a" in r.stdout and "Pod b: netns vppagent-demo-b" in r.stdout
    assert "route 10.99.0.3/32 via 10.99.0.3" in r.stdout
    assert "Done: VPP and the node are as they were" in r.stdout
    assert _netns() == before_ns
    assert _links() == before_links


def test_the_demo_refuses_a_bad_api_dir_with_one_line(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VPPAGENT_VPP_BIN", "VPPAGENT_VPP_SOCKET")}
    before_ns = _netns()
    r = subprocess.run([sys.executable, "-m", "testbed.demo", "--api-dir", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=60, cwd=str(REPO), env=env)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    assert _netns() == before_ns
