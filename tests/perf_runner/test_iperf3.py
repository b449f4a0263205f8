"""iperf3 output from real runs between two netns (the kernel baseline environment), parsed."""
from __future__ import annotations

import json
import subprocess

import pytest

from perf.runner.envs import open_env
from perf.runner.loadgen import iperf3
from perf.runner.scenario import Load, parse
from testbed import payload

from .conftest import needs_root, perf_netns

pytestmark = [pytest.mark.netns, needs_root]


def test_tcp_parallel_and_udp_small_packets_between_two_netns() -> None:
    before = perf_netns()
    # offloads off: each segment then crosses the server's eth0 as its own packet (no GSO/GRO)
    sc = parse({"name": "k", "env": "kernel", "kernel_mode": "route", "mtu": 1400, "pod_offloads": False})
    with open_env(sc) as setup:
        assert perf_netns() - before, "the environment made its netns"
        rx0 = setup.server_rx_packets()
        tcp = iperf3.run(setup.client_prefix, setup.server_prefix, Load(parallel=2), setup.target_ip, 1)
        rx1 = setup.server_rx_packets()
        assert (tcp.protocol, tcp.streams) == ("tcp", 2)
        assert tcp.gbit_s > 0 and tcp.bytes_received > 0
        assert tcp.gbit_s == pytest.approx(tcp.bytes_received * 8 / tcp.seconds / 1e9, rel=1e-3)
        # the data crossed the server pod's eth0: at least one packet per MTU's worth of bytes
        assert rx1 - rx0 >= tcp.bytes_received / 1400

        udp = iperf3.run(setup.client_prefix, setup.server_prefix, Load(protocol="udp", length=64, bitrate="20M"),
                         setup.target_ip, 1)
        assert udp.protocol == "udp" and udp.packets and udp.packets > 0
        assert 0 <= udp.lost_packets <= udp.packets
        assert udp.bytes_received == 64 * (udp.packets - udp.lost_packets)
        assert udp.udp_mpps == pytest.approx((udp.packets - udp.lost_packets) / udp.seconds / 1e6)

        # a client with no server: iperf3's own error, typed
        r = subprocess.run(setup.client_prefix + iperf3.client_args(Load(), setup.target_ip, 1, port=5999),
                           capture_output=True, text=True, timeout=30)
        with pytest.raises(iperf3.Iperf3Error, match="iperf3: unable to connect"):
            iperf3.parse(r.stdout)
        assert "error" in json.loads(r.stdout)
    assert perf_netns() == before, "the environment removed its netns"


def test_output_that_is_not_iperf3_json_is_refused() -> None:
    with pytest.raises(iperf3.Iperf3Error, match="not JSON"):
        iperf3.parse("iperf3: error - unable to connect")
    with pytest.raises(iperf3.Iperf3Error, match="lacks"):
        iperf3.parse('{"start": {}}')


def test_the_kernel_env_removes_its_netns_after_a_failure() -> None:
    before = perf_netns()
    sc = parse({"name": "k", "env": "kernel"})
    with pytest.raises(RuntimeError, match="boom"):
        with open_env(sc) as setup:
            assert setup.server_rx_packets() is not None
            raise RuntimeError("boom")
    assert perf_netns() == before


def test_the_kernel_baseline_keeps_the_kernels_offloads_by_default() -> None:
    sc = parse({"name": "k", "env": "kernel", "kernel_mode": "bridge"})
    assert sc.offloads_label == "kernel defaults (on)"
    with open_env(sc) as setup:
        feats = payload.ethtool_features(setup.server_prefix[-1], "eth0")
        on = {name for name, state in feats.items() if state == "on"}
        assert {"tx-checksumming", "tcp-segmentation-offload", "generic-segmentation-offload"} <= on, feats
