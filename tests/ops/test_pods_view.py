"""``vppagent show pods`` and the per-pod metric labels, with a pod attached through real
gRPC, netns and veth (pod networking against the emulator, a VPP test double)."""
from __future__ import annotations

import argparse
import io
import json
import os

import pytest
from prometheus_client import CollectorRegistry

from testbed.podnet import Pods, container_id, running_agent
from testbed.targets import api_dir
from vppagent import opscli
from vppagent.ops.metrics import StatsSample, VppStatsCollector
from vppagent.ops.status_server import StatusServer
from vppagent.ops.views import AgentView
from vppagent.vpp import interfaces
from vppagent.vpp.stats import InterfaceCounters

pytestmark = pytest.mark.netns


@pytest.fixture
def pods():
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    p = Pods()
    yield p
    p.close()


def test_show_pods_joins_agent_and_vpp(pods: Pods, tmp_path) -> None:
    with running_agent() as h:
        ns = pods.netns(1)
        cid = container_id(1)
        result, error = h.add(cid, ns, pod="web-1", namespace="shop")
        assert error is None, error
        try:
            path = str(tmp_path / "status.sock")
            with StatusServer.for_agent(path, h.agent):
                ap = argparse.ArgumentParser()
                opscli.add_commands(ap.add_subparsers(dest="cmd"))
                args = ap.parse_args(["show", "pods", "-o", "json", "--status-socket", path,
                                      "--vpp-socket", h.vpp.socket_path, "--api-dir", api_dir()])
                out, err = io.StringIO(), io.StringIO()
                assert opscli.run(args, out, err) == 0, err.getvalue()
            rows = json.loads(out.getvalue())["data"]
            assert len(rows) == 1
            row = rows[0]
            tagged = interfaces.by_tag(h.vpp, "vppagent:pod:")
            assert list(tagged) == [f"vppagent:pod:{cid[:32]}/eth0"]
            idx = tagged[f"vppagent:pod:{cid[:32]}/eth0"].sw_if_index
            assert (row["namespace"], row["pod"], row["ifname"], row["state"]) == ("shop", "web-1", "eth0", "programmed")
            assert row["sw_if_index"] == idx and row["vpp"] in ("up", "down")
            assert row["ips"] == [result["ips"][0]["address"]]

            # the same mapping labels that interface's stats series
            mapping = AgentView(h.agent).pod_interfaces()
            assert {i: (r.namespace, r.pod) for i, r in mapping.items()} == {idx: ("shop", "web-1")}
            sample = StatsSample([InterfaceCounters(idx, "host-x", 5, 500, 6, 600, 1),
                                  InterfaceCounters(0, "local0", 0, 0, 0, 0, 0)], {})
            reg = CollectorRegistry()
            reg.register(VppStatsCollector(lambda: sample, AgentView(h.agent).pod_interfaces))
            assert reg.get_sample_value("vppagent_vpp_interface_rx_bytes_total",
                                        {"interface": "host-x", "namespace": "shop", "pod": "web-1"}) == 500
            assert reg.get_sample_value("vppagent_vpp_interface_rx_bytes_total",
                                        {"interface": "local0", "namespace": "", "pod": ""}) == 0
        finally:
            assert h.delete(cid, ns, pod="web-1", namespace="shop") is None
