"""Two agents, two emulated VPPs, one fake API server: keys are published through the API (the
sources' Node annotator, a merge patch through the real kubernetes client), pairs encrypt, and an
annotation change switches them live (emulator tier).
"""
from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from testbed import targets
from testbed.agent_runner import FAST, AgentThread, agent_env
from testbed.fakekube import FakeKube
from testbed.fakekube import objects as k
from testbed.wait import wait_for
from vppagent.agent import Agent
from vppagent.config import load
from vppagent.sources import EventRecorder, api_client_for_host
from vppagent.vpp import ipsec, tunnels


@pytest.fixture
def cluster(tmp_path, tmp_short: Path):
    with ExitStack() as stack:
        fake = stack.enter_context(FakeKube(bookmark_interval=0.2))
        for i in (1, 2):
            fake.add(k.node(f"node-{i}", pod_cidrs=[f"10.244.{i}.0/24"], internal_ip=f"192.168.0.{i}",
                            annotations={"vppagent.io/encryption": "ipsec"}))
        clients, runs = {}, []
        for i in (1, 2):
            name = f"node-{i}"
            vpp = targets.emulator(stack, tmp_short / name, client={})
            clients[name] = vpp.vpp
            cfg = load(agent_env(vpp.socket, VPPAGENT_NODE_NAME=name,
                                 VPPAGENT_CONNECTIVITY="ipip", VPPAGENT_SERVICES="false",
                                 VPPAGENT_STATE_DIR=str(tmp_path / name)))
            api = api_client_for_host(fake.url)
            recorder = EventRecorder(api, host=name).start()
            agent = Agent(cfg, api_client=api, recorder=recorder, source_options=FAST)
            run = AgentThread(agent, name, on_stop=[recorder.stop]).start()
            stack.callback(run.stop)
            runs.append(run)
        yield fake, clients, runs


def protected_spis(vpp) -> tuple[int, tuple[int, ...]] | None:
    prots = ipsec.dump_protections(vpp)
    if len(prots) != 1:
        return None
    sas = {s.sa_id: s.spi for s in ipsec.dump_sas(vpp)}
    return sas[prots[0].sa_out], tuple(sas[i] for i in prots[0].sa_in)


def test_two_agents_encrypt_through_published_keys_and_switch_live(cluster):
    fake, vpp, runs = cluster

    def encrypted():
        a, b = protected_spis(vpp["node-1"]), protected_spis(vpp["node-2"])
        return a and b and a[0] in b[1] and b[0] in a[1]

    wait_for(encrypted, 15, "both nodes to protect their tunnel with matching SAs")
    for i in (1, 2):
        ann = fake.get("Node", f"node-{i}")["metadata"]["annotations"]
        assert "vppagent.io/ipsec-public-key" in ann and ann["vppagent.io/ipsec-key-epoch"] == "0"
    # node-2 turns encryption off: both fall back to a clear ipip tunnel, with an Event.
    fake.patch("Node", "node-2", {"metadata": {"annotations": {"vppagent.io/encryption": "none"}}})
    wait_for(lambda: not ipsec.dump_sas(vpp["node-1"]) and tunnels.dump_ipip(vpp["node-1"]), 15,
             "node-1 to fall back to clear ipip")
    wait_for(lambda: fake.events(reason="EncryptionMismatch"), 10, "an EncryptionMismatch Event")
    # And back on: encrypted again, live.
    fake.patch("Node", "node-2", {"metadata": {"annotations": {"vppagent.io/encryption": "ipsec"}}})
    wait_for(encrypted, 15, "encryption to come back")
    assert all(not r.errors for r in runs)
