"""``vppagent run`` as a process with the ops wiring (status socket, ops metrics), read by
``vppagent status`` as a process: the emulator (a VPP test double) and the agent run as
subprocesses, the fake Kubernetes API in the test.

Needs the wiring in vppagent/config.py and cli.py (/tmp/ops_agent.patch); skipped, saying so,
until it is applied."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from testbed.agent_process import AgentProcess, subprocess_env
from testbed.agent_runner import agent_env
from testbed.emulator.server import Emulator
from testbed.fakekube import FakeKube
from testbed.targets import api_dir
from tests.cluster import free_port, populate
from vppagent import config
from vppagent.ops.metrics import AgentCollector
from vppagent.ops.views import AgentView
from vppagent.vpp.client import VppClient

WIRED = {"status_socket", "stats_socket"} <= {k.name for k in config.KEYS}
needs_wiring = pytest.mark.skipif(not WIRED, reason="ops wiring not applied to config.py/cli.py "
                                                    "(/tmp/ops_agent.patch)")


@needs_wiring
def test_run_serves_status_and_metrics_and_cleans_up(emulator_process: str, tmp_path: Path) -> None:
    status_sock = str(tmp_path / "run" / "status.sock")
    with FakeKube(bookmark_interval=0.2) as fake:
        populate(fake, nodes=2, services=1)
        env = agent_env(emulator_process, VPPAGENT_HEALTH_PORT=str(free_port()), VPPAGENT_STATUS_SOCKET=status_sock,
                        VPPAGENT_STATS_SOCKET="", VPPAGENT_LOG_LEVEL="info",
                        VPPAGENT_KUBECONFIG=str(fake.write_kubeconfig(tmp_path / "kc")))
        agent = AgentProcess(env)
        try:
            agent.wait_ready()
            assert stat.S_IMODE(os.stat(status_sock).st_mode) == 0o600
            out = subprocess.run([sys.executable, "-m", "vppagent.cli", "status", "-o", "json",
                                  "--status-socket", status_sock, "--vpp-socket", emulator_process,
                                  "--api-dir", api_dir()], env=subprocess_env(), capture_output=True,
                                 text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            doc = json.loads(out.stdout)
            assert doc["agent"]["ready"] and doc["agent"]["counts"]["peers"] == 1 and doc["vpp"]["interfaces"]
            text = urllib.request.urlopen(f"http://127.0.0.1:{agent.port}/metrics", timeout=5).read().decode()
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            assert fams["vppagent_reconcile_duration_seconds"].type == "histogram"
            assert any(s.value > 0 for s in fams["vppagent_vpp_api_calls"].samples)
            assert "vppagent_vpp_stats_up" not in fams, "no stats socket configured: no VPP stats series"
        finally:
            agent.proc.send_signal(signal.SIGTERM)
            agent.proc.wait(timeout=15)
        assert agent.proc.returncode == 0, "".join(agent.lines[-20:])
        assert not os.path.exists(status_sock), "the status socket is removed on exit"


def test_vpp_api_errors_are_counted_by_message(tmp_path: Path) -> None:
    emu = Emulator(str(tmp_path / "api.sock"), api_dir()).start()
    try:
        with VppClient(emu.socket_path, api_dir()).connect() as vpp:
            if not hasattr(vpp, "errors"):
                pytest.skip("VppClient has no errors counter yet (/tmp/ops_agent.patch)")
            reply = vpp.call("delete_loopback", check=False, sw_if_index=4242)
            assert reply.retval != 0

            class FakeAgent:  # only what AgentCollector reads; the client is real
                pass

            a = FakeAgent()
            a.vpp = vpp
            a.health = type("H", (), {"ready": staticmethod(lambda: (True, "ready"))})()
            a.reconciler = type("R", (), {"applied": {}})()
            reg = CollectorRegistry()
            view = AgentView(a)
            view.counts = lambda: {}  # type: ignore[method-assign]
            reg.register(AgentCollector(view))
            assert reg.get_sample_value("vppagent_vpp_api_errors_total", {"message": "delete_loopback"}) == 1
            assert reg.get_sample_value("vppagent_vpp_api_calls_total", {"message": "delete_loopback"}) == 1
    finally:
        emu.stop()
