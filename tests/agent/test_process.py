"""``vppagent run`` as a process: kill -9 in the middle of programming, SIGTERM, health over HTTP.

The agent and the emulator (a test double of VPP) run as subprocesses, as on
a node; the fake API server (a test double) runs in the test.
"""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from testbed.agent_process import AgentProcess, subprocess_env
from testbed.agent_runner import agent_env
from testbed.fakekube import FakeKube
from testbed.targets import api_dir
from testbed.wait import wait_for
from tests.cluster import add_service, free_port, populate, vpp_picture
from vppagent.vpp import cnat
from vppagent.vpp.client import VppClient

N_SERVICES = 1500  # 3000 translations: enough batches to be killed in the middle of


def test_kill_9_in_the_middle_of_programming_then_restart_converges_without_duplicates_or_leaks(
        tmp_path: Path, emulator_process: str) -> None:
    with FakeKube(bookmark_interval=0.5) as fake:
        populate(fake, nodes=40, services=N_SERVICES)
        env = agent_env(emulator_process, VPPAGENT_KUBECONFIG=str(fake.write_kubeconfig(tmp_path / "kc")),
                        VPPAGENT_HEALTH_PORT=str(free_port()), VPPAGENT_LOG_LEVEL="debug",
                        VPPAGENT_BULK_CHUNK="100")
        first = AgentProcess(env)
        first.wait_line('"kind":"cnat-translation"', timeout=60)
        assert first.kill(signal.SIGKILL) == -signal.SIGKILL

        look = VppClient(emulator_process, api_dir()).connect()
        try:
            partial = len(cnat.dump_translations(look))
            assert 0 < partial < 2 * N_SERVICES, (f"killed at {partial} translations: not in the middle; "
                                                  f"{''.join(first.lines[-5:])}")
            # While no agent runs, the cluster moves on.
            for i in range(10):
                fake.delete("Service", f"s{i}", "default")
                fake.delete("EndpointSlice", f"s{i}-a", "default")
            add_service(fake, N_SERVICES + 1)
            fake.delete("Node", "node-40")

            second = AgentProcess({**env, "VPPAGENT_LOG_LEVEL": "info"})
            second.wait_ready()
            assert second.status("/healthz") == 200

            pic = vpp_picture(look)
            tr = cnat.dump_translations(look)
            keys = [(t.vip.address, t.vip.port, int(t.proto)) for t in tr]
            assert len(keys) == len(set(keys)), "duplicate translations"
            assert len(tr) == 2 * (N_SERVICES - 10 + 1)
            assert not any(str(t.vip.address) in {f"10.96.0.{10 + i}" for i in range(10)} for t in tr)
            assert len(pic["routes"]) == 38  # 40 nodes, minus this one, minus node-40
            assert all(len(t[3]) == 3 for t in pic["translations"])

            # SIGTERM: a clean exit that leaves the data plane as programmed.
            assert second.kill(signal.SIGTERM) == 0
            assert any("agent stopped" in line for line in second.lines)
            assert vpp_picture(look) == pic
        finally:
            look.close()


def test_agent_waits_for_vpp_and_is_not_ready_meanwhile(tmp_path: Path) -> None:
    with FakeKube() as fake:
        populate(fake, nodes=2, services=1)
        sock = str(tmp_path / "later.sock")
        env = agent_env(sock, VPPAGENT_KUBECONFIG=str(fake.write_kubeconfig(tmp_path / "kc")),
                        VPPAGENT_HEALTH_PORT=str(free_port()), VPPAGENT_LOG_LEVEL="info")
        agent = AgentProcess(env)
        try:
            agent.wait_line("waiting for VPP")
            wait_for(lambda: agent.status("/healthz") == 200, 20, "the health server")
            assert agent.status("/readyz") == 503
            emu = subprocess.Popen([sys.executable, "-m", "testbed.emulator.cli", "--socket", sock,
                                    "--api-dir", api_dir()], env=subprocess_env(), stdout=subprocess.DEVNULL)
            try:
                wait_for(lambda: agent.status("/readyz") == 200, 20, "ready once VPP is there")
            finally:
                assert agent.kill(signal.SIGTERM) == 0
                emu.terminate()
                emu.wait(timeout=10)
        finally:
            if agent.proc.poll() is None:
                agent.kill(signal.SIGKILL)
