"""``python -m perf run`` end to end: a kernel baseline alone, then bare VPP pod to pod with its baseline."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perf.runner.run import run_scenario
from perf.runner.scenario import find
from testbed.targets import real_vpp_reason

from .conftest import needs_root, perf_netns

REPO = Path(__file__).resolve().parents[2]
NO_PLOTS = "matplotlib not installed (the perf extra): `python -m perf run` cannot write its PNGs"


def _perf(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perf", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout, env=os.environ.copy())


@pytest.mark.netns
@needs_root
def test_kernel_baseline_run_writes_its_figures(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason=NO_PLOTS)
    before = perf_netns()
    r = _perf("run", "kernel-route", "--seconds", "1", "--repeat", "3", "--out", str(tmp_path), "--name", "k")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads((tmp_path / "k.json").read_text())
    (res,) = doc["scenarios"]
    assert res["status"] == "ok" and res["env"]["kernel_mode"] == "route"
    (run,) = res["runs"]
    assert run["status"] == "ok" and run["gbit_s"] > 0 and run["mpps"] > 0 and run["server_rx_packets"] > 0
    assert len(run["samples_gbit_s"]) == 3 and run["gbit_s"] == sorted(run["samples_gbit_s"])[1]
    assert doc["machine"]["cpus"] == os.cpu_count() and doc["vpp_version"] is None
    assert f"| kernel-route | kernel | iperf3 tcp x1 | {run['gbit_s']:.3f} |" in (tmp_path / "k.md").read_text()
    assert "median of 3" in (tmp_path / "k.md").read_text()
    assert (tmp_path / "k.png").stat().st_size > 0
    assert perf_netns() == before


def test_unknown_scenario_is_a_clear_error(tmp_path: Path) -> None:
    r = _perf("run", "no-such-scenario", "--out", str(tmp_path))
    assert r.returncode == 2
    assert "scenario error: no-such-scenario: (name): no such scenario file" in r.stderr
    assert not list(tmp_path.iterdir())


def test_tun_and_iperf3_over_memif_say_why_they_did_not_run(tmp_path: Path) -> None:
    import dataclasses

    from perf.runner.scenario import Load

    memif_iperf = dataclasses.replace(find("vpp-memif"), load=(Load(),))
    res = run_scenario(memif_iperf, 1, tmp_path)
    assert res["status"] == "not run" and "iperf3 cannot drive them" in res["reason"]
    if not os.path.exists("/dev/vhost-net"):
        res = run_scenario(find("vpp-tun"), 1, tmp_path)
        assert res["status"] == "not run" and "/dev/vhost-net" in res["reason"]


@pytest.mark.real_vpp
@pytest.mark.netns
@pytest.mark.skipif(real_vpp_reason() is not None or not os.environ.get("VPPAGENT_VPP_BIN"),
                    reason=real_vpp_reason() or "needs VPPAGENT_VPP_BIN (a private VPP)")
def test_bare_vpp_pod_to_pod_with_its_kernel_baseline(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason=NO_PLOTS)
    before = perf_netns()
    r = _perf("run", "vpp-bare", "--seconds", "2", "--out", str(tmp_path), timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    doc = json.loads((tmp_path / "throughput.json").read_text())
    assert doc["vpp_version"].startswith("26.06")
    by = {s["scenario"]["name"]: s for s in doc["scenarios"]}
    assert list(by) == ["kernel-bridge", "vpp-bare"]
    kernel = {run["load"]: run for run in by["kernel-bridge"]["runs"]}
    assert set(kernel) == {"iperf3 tcp x1", "iperf3 udp 64B x1"}  # the baseline ran vpp-bare's loads
    for run in by["vpp-bare"]["runs"]:
        assert run["status"] == "ok", run
        assert run["gbit_s"] > 0 and run["mpps"] > 0
        assert run["ratio_to_kernel"] == round(run["gbit_s"] / kernel[run["load"]]["gbit_s"], 3)
        assert run["cpu_s"]["vpp"] > 0
        (rt,) = run["vpp_runtime"]
        names = {n["name"] for n in rt["nodes"]}
        assert {"ip4-lookup", "ip4-rewrite"} <= names
        # VPP's IP layer saw at least the packets the server pod received
        assert rt["ip_packets"] >= run["server_rx_packets"] * 0.9
        assert rt["clocks_per_packet"] > 0
    md = (tmp_path / "throughput.md").read_text()
    assert "| vpp-bare | local | iperf3 tcp x1 |" in md
    assert (tmp_path / "throughput_clocks.png").exists()
    assert perf_netns() == before


@pytest.mark.real_vpp
@pytest.mark.netns
@pytest.mark.skipif(real_vpp_reason() is not None or not os.environ.get("VPPAGENT_VPP_BIN"),
                    reason=real_vpp_reason() or "needs VPPAGENT_VPP_BIN (a private VPP)")
def test_memif_pods_with_a_vpp_peer_carry_generated_traffic(tmp_path: Path) -> None:
    def pod_vpps() -> set[str]:
        out = subprocess.run(["pgrep", "-f", "vpa-perf-.*/memif-peer/startup.conf"], capture_output=True,
                             text=True).stdout
        return set(out.split())

    before, vpps_before = perf_netns(), pod_vpps()
    res = run_scenario(find("vpp-memif"), 2, tmp_path)
    assert res["status"] == "ok", res.get("reason")
    (run,) = res["runs"]
    assert run["status"] == "ok", run
    # the peer received over the server pod's memif what it generated into the client pod's
    assert 0 < run["server_rx_packets"] <= run["pg_sent_packets"]
    assert run["mpps"] == pytest.approx(run["server_rx_packets"] / run["seconds"] / 1e6, rel=0.01)
    # UDP payload of the 92-byte IP packets, as iperf3 counts
    assert run["gbit_s"] == pytest.approx(run["server_rx_packets"] * 64 * 8 / run["seconds"] / 1e9, rel=0.01)
    assert run["cpu_s"]["pod_vpp"] > 0 and run["cpu_s"]["vpp"] > 0
    assert len(res["pids"]["vpp"]) == 1 and len(res["pids"]["pod_vpp"]) == 1
    assert not set(res["pids"]["vpp"]) & set(res["pids"]["pod_vpp"])  # the node's VPP is measured apart
    nodes = {n["name"]: n for n in run["vpp_runtime"][0]["nodes"]}
    assert nodes["memif-input"]["vectors"] >= run["server_rx_packets"]  # the node's VPP forwarded them
    assert run["node_vpp_ip_mpps"] > 0
    assert perf_netns() == before and pod_vpps() == vpps_before
