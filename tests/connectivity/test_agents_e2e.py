"""Two agents, two emulated VPPs, one fake API server: keys are published through the API, pairs
encrypt, and an annotation change switches them live (emulator tier).

Needs the agent wiring of /tmp/encrypt_agent.patch (features_for builds NodeConnectivity, the
agent publishes ``annotations()`` through ``sources.patch_node_annotations``); skipped until the
lead has applied it. The Node patcher is the test's own (a merge patch through the real
kubernetes client), standing in for the sources' one.
"""
from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import pytest
from kubernetes import client as k8s

from tests.agent.conftest import FAST, agent_env, wait_for
from tests.conftest import api_dir
from tests.fakekube import FakeKube
from tests.fakekube import objects as k
from vppagent.agent import Agent
from vppagent.config import load
from vppagent.emulator.server import Emulator
from vppagent.sources import EventRecorder, api_client_for_host
from vppagent.vpp import ipsec, tunnels
from vppagent.vpp.client import VppClient

pytestmark = pytest.mark.skipif(not hasattr(Agent, "_publish_annotations"),
                                reason="needs /tmp/encrypt_agent.patch applied to vppagent/agent.py")


class Running:
    def __init__(self, agent: Agent):
        self.agent = agent
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.agent.run()
        except BaseException as e:  # noqa: BLE001
            self.error = e


@pytest.fixture
def cluster(tmp_path):
    with FakeKube(bookmark_interval=0.2) as fake, tempfile.TemporaryDirectory(prefix="vppagent-enc-") as d:
        for i in (1, 2):
            fake.add(k.node(f"node-{i}", pod_cidrs=[f"10.244.{i}.0/24"], internal_ip=f"192.168.0.{i}",
                            annotations={"vppagent.io/encryption": "ipsec"}))
        emus, clients, runs = {}, {}, []
        try:
            for i in (1, 2):
                name = f"node-{i}"
                emus[name] = Emulator(str(Path(d) / f"{name}.sock"), api_dir()).start()
                clients[name] = VppClient(emus[name].socket_path, api_dir()).connect()
                cfg = load(agent_env(emus[name].socket_path, VPPAGENT_NODE_NAME=name,
                                     VPPAGENT_CONNECTIVITY="ipip", VPPAGENT_SERVICES="false",
                                     VPPAGENT_STATE_DIR=str(tmp_path / name)))
                api = api_client_for_host(fake.url)
                agent = Agent(cfg, api_client=api, recorder=EventRecorder(api, host=name).start(),
                              source_options=FAST)
                core = k8s.CoreV1Api(api)
                agent.sources.patch_node_annotations = (
                    lambda node, ann, core=core: core.patch_node(node, {"metadata": {"annotations": ann}}))
                runs.append(Running(agent))
            yield fake, clients, runs
        finally:
            for r in runs:
                r.agent.stop()
                r.thread.join(timeout=10)
                r.agent.recorder.stop()
            for c in clients.values():
                c.close()
            for e in emus.values():
                e.stop()
        for r in runs:
            assert r.error is None, r.error


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
    assert all(r.error is None for r in runs)
