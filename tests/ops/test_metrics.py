"""Metric names and labels: the stats collector fed samples shaped like the stats reader's
outputs (no vpp_papi involved), the agent collector on a running agent (emulator), and the
collector on a real VPP's stats segment (real_vpp)."""
from __future__ import annotations

import urllib.request
from contextlib import ExitStack

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from testbed.fakekube import objects as k
from tests.ops.conftest import OpsAgent, wait_for
from vppagent.ops.metrics import (
    PolicyCountersCollector,
    StatsSample,
    StatsSource,
    VppStatsCollector,
    read_policy_counters,
    split_error,
)
from vppagent.ops.views import PodRef
from vppagent.vpp.stats import InterfaceCounters

SAMPLE = StatsSample(
    interfaces=[InterfaceCounters(0, "local0", 0, 0, 0, 0, 0),
                InterfaceCounters(3, "host-vpa0123456789ab", 10, 1000, 20, 2000, 2)],
    errors={"/err/ip4-input/ip4 ttl <= 1": 4, "/err/kpol-ingress/default_deny": 7, "/if/garbage": 1},
)
POLICY = {(5, "ingress"): [9, 3, 0, 1], (5, "egress"): [0], (6, "ingress"): []}


def families(registry: CollectorRegistry) -> dict:
    return {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}


def test_stats_series_names_labels_and_values() -> None:
    reg = CollectorRegistry()
    reg.register(VppStatsCollector(lambda: SAMPLE, lambda: {3: PodRef("shop", "web-1", "eth0")}))
    fams = families(reg)
    for name in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "drops"):
        assert fams[f"vppagent_vpp_interface_{name}"].type == "counter"
    v = reg.get_sample_value
    pod = {"interface": "host-vpa0123456789ab", "namespace": "shop", "pod": "web-1"}
    assert (v("vppagent_vpp_interface_rx_packets_total", pod), v("vppagent_vpp_interface_tx_bytes_total", pod),
            v("vppagent_vpp_interface_drops_total", pod)) == (10, 2000, 2)
    assert v("vppagent_vpp_interface_rx_packets_total", {"interface": "local0", "namespace": "", "pod": ""}) == 0
    assert v("vppagent_vpp_node_errors_total", {"node": "ip4-input", "error": "ip4 ttl <= 1"}) == 4
    assert v("vppagent_vpp_node_errors_total", {"node": "kpol-ingress", "error": "default_deny"}) == 7
    assert len(fams["vppagent_vpp_node_errors"].samples) == 2, "non-/err/ names are not errors"
    assert v("vppagent_vpp_stats_up") == 1


def test_policy_rule_counters() -> None:
    reg = CollectorRegistry()
    reg.register(PolicyCountersCollector(lambda: POLICY, lambda: {"5": "shop/allow-web"}))
    v = reg.get_sample_value
    fams = families(reg)
    assert fams["vppagent_policy_rule_packets"].type == "counter"
    assert v("vppagent_policy_default_deny_packets_total",
             {"policy_id": "5", "policy": "shop/allow-web", "direction": "ingress"}) == 9
    assert [v("vppagent_policy_rule_packets_total", {"policy_id": "5", "policy": "shop/allow-web",
                                                       "direction": "ingress", "rule": str(i)}) for i in range(3)] == [3, 0, 1]
    assert v("vppagent_policy_default_deny_packets_total",
             {"policy_id": "5", "policy": "shop/allow-web", "direction": "egress"}) == 0
    assert not [s for s in fams["vppagent_policy_rule_packets"].samples if s.labels["direction"] == "egress"]
    assert not [s for f in fams.values() for s in f.samples if s.labels.get("policy_id") == "6"]


def test_no_policy_plugin_means_no_policy_series(tmp_path) -> None:
    from testbed.emulator.server import Emulator
    from testbed.targets import api_dir
    from vppagent.vpp.client import VppClient

    emu = Emulator(str(tmp_path / "api.sock"), api_dir()).start()  # a VPP double without kpol
    try:
        with VppClient(emu.socket_path, api_dir()).connect() as vpp:
            assert read_policy_counters(vpp) == {}
            reg = CollectorRegistry()
            reg.register(PolicyCountersCollector(lambda: read_policy_counters(vpp)))
            assert not families(reg)
        assert read_policy_counters(vpp) == {}, "not connected: nothing, no error"
    finally:
        emu.stop()


def test_unreadable_stats_segment_is_reported_not_raised() -> None:
    def broken() -> StatsSample:
        raise OSError("stats segment unmapped")

    reg = CollectorRegistry()
    reg.register(VppStatsCollector(broken))
    assert reg.get_sample_value("vppagent_vpp_stats_up") == 0
    assert "vppagent_vpp_interface_rx_packets" not in families(reg)


def test_split_error() -> None:
    assert split_error("/err/ip4-input/ip4 ttl <= 1") == ("ip4-input", "ip4 ttl <= 1")
    assert split_error("/err/a/b/c") == ("a", "b/c")
    assert split_error("/err/lonely") is None and split_error("/if/rx") is None


def test_agent_series_on_the_health_port(ops_agent: OpsAgent) -> None:
    # a change after start: one more reconcile pass, timed by the instrumented reconciler
    ops_agent.fake.add(k.node("node-4", pod_cidrs=["10.244.4.0/24"], internal_ip="192.168.0.4"))
    wait_for(lambda: (ops_agent.registry.get_sample_value("vppagent_peers") == 3
                      and ops_agent.registry.get_sample_value("vppagent_reconcile_duration_seconds_count")),
             10, "the new node to be reconciled")
    text = urllib.request.urlopen(f"http://127.0.0.1:{ops_agent.health_port}/metrics", timeout=5).read().decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["vppagent_reconcile_duration_seconds"].type == "histogram"
    calls = {s.labels["message"]: s.value for s in fams["vppagent_vpp_api_calls"].samples
             if s.name == "vppagent_vpp_api_calls_total"}
    assert calls["ip_route_add_del"] >= 3, calls  # a route per remote pod CIDR
    gauges = {n: fams[n].samples[0].value for n in
              ("vppagent_pods", "vppagent_services", "vppagent_policies", "vppagent_peers", "vppagent_vpp_connected",
               "vppagent_ready")}
    assert gauges == {"vppagent_pods": 0, "vppagent_services": 2, "vppagent_policies": 0, "vppagent_peers": 3,
                      "vppagent_vpp_connected": 1, "vppagent_ready": 1}
    for name in fams:
        assert name.startswith("vppagent_"), name


@pytest.mark.real_vpp
def test_stats_collector_on_a_real_vpp() -> None:
    from testbed import targets
    from vppagent.vpp import interfaces

    with ExitStack() as stack:
        # private: the test reads this VPP's own stats socket
        target = targets.private_vpp(stack, client={})
        vpp, proc = target.vpp, target.proc
        assert vpp is not None and proc is not None
        idx = interfaces.create_loopback(vpp)
        name = interfaces.get(vpp, idx).name
        source = StatsSource(str(proc.paths.stats_socket))
        try:
            reg = CollectorRegistry()
            reg.register(VppStatsCollector(source.sample, lambda: {idx: PodRef("ns1", "pod1", "eth0")}))
            assert reg.get_sample_value("vppagent_vpp_stats_up") == 1
            assert reg.get_sample_value("vppagent_vpp_interface_rx_packets_total",
                                        {"interface": name, "namespace": "ns1", "pod": "pod1"}) == 0
            assert reg.get_sample_value("vppagent_vpp_interface_tx_bytes_total",
                                        {"interface": "local0", "namespace": "", "pod": ""}) == 0
            fams = families(reg)
            for s in fams["vppagent_vpp_node_errors"].samples:
                assert s.labels["node"] and s.labels["error"] and s.value > 0
            assert read_policy_counters(vpp) == {} or vpp.has_message("kpol_counters_dump")
        finally:
            source.close()
            interfaces.delete_loopback(vpp, idx)


def test_stats_source_without_vpp_reports_down_and_retries(tmp_path) -> None:
    from vppagent.vpp.errors import VppConnectError

    source = StatsSource(str(tmp_path / "stats.sock"))
    with pytest.raises(VppConnectError, match="does not exist"):
        source.sample()
    reg = CollectorRegistry()
    reg.register(VppStatsCollector(source.sample))
    assert reg.get_sample_value("vppagent_vpp_stats_up") == 0
    assert reg.get_sample_value("vppagent_vpp_stats_up") == 0, "each scrape tries again"
    source.close()
