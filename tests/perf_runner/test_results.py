"""Result files: JSON, Markdown and PNG written from a session document, holding its figures."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from perf.runner import results
from perf.runner.run import add_ratios


def _session() -> dict:
    def sc(name: str, env: str, **kw: object) -> dict:
        return {"name": name, "env": env, "baseline": None, "compare_to": None, "target_ratio": None, **kw}

    def run(gbit: float, mpps: float, vpp: float | None = None) -> dict:
        out = {"load": "iperf3 tcp x1", "status": "ok", "gbit_s": gbit, "mpps": mpps}
        if vpp is not None:
            out.update(cpu_s={"vpp": vpp, "agent": 0.05}, vpp_cpu_s_per_gbit=round(vpp / (gbit * 3), 3),
                       vpp_runtime=[{"seconds": 3.0, "ip_packets": 1000, "clocks_per_packet": 4321.0,
                                     "nodes": [{"name": "ip4-lookup", "state": "active", "calls": 10,
                                                "vectors": 1000, "clocks_per_packet": 61.0}]}])
        return out

    scenarios = {
        "kernel-bridge": {"scenario": sc("kernel-bridge", "kernel"), "status": "ok", "runs": [run(3.0, 0.28)]},
        "vpp-bare": {"scenario": sc("vpp-bare", "local", baseline="kernel-bridge"), "status": "ok",
                     "runs": [run(1.5, 0.14, vpp=2.9)]},
        "vpp-policy-nat": {"scenario": sc("vpp-policy-nat", "local", baseline="kernel-bridge", compare_to="vpp-bare",
                                          target_ratio=0.9), "status": "ok", "runs": [run(1.44, 0.135, vpp=2.95)]},
        "vpp-memif": {"scenario": sc("vpp-memif", "local", baseline="kernel-bridge"), "status": "not run",
                      "reason": "memif pods need a user-space memif peer", "runs": []},
    }
    add_ratios(scenarios)
    return {"machine": {"host": "h", "cpu": "c", "cpus": 2, "kernel": "6", "iperf3": "iperf 3.12"},
            "vpp_version": "26.06-release", "started": "2026-11-23T21:00:00+00:00", "seconds_per_run": 3,
            "asked": ["vpp-policy-nat"], "scenarios": list(scenarios.values())}


def test_ratios_to_kernel_and_to_the_target() -> None:
    doc = _session()
    by = {s["scenario"]["name"]: s for s in doc["scenarios"]}
    bare = by["vpp-bare"]["runs"][0]
    assert bare["ratio_to_kernel"] == 0.5 and bare["kernel"]["gbit_s"] == 3.0
    nat = by["vpp-policy-nat"]["runs"][0]
    assert nat["compare"] == {"scenario": "vpp-bare", "load": "iperf3 tcp x1", "gbit_s": 1.5, "ratio": 0.96,
                              "target_ratio": 0.9, "met": True}


def test_files_hold_the_figures(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib not installed (the perf extra): no PNG to check")
    doc = _session()
    paths = results.write(doc, tmp_path, "throughput-test")
    assert [p.name for p in paths] == ["throughput-test.json", "throughput-test.md", "throughput-test.png",
                                       "throughput-test_clocks.png"]
    assert json.loads(paths[0].read_text()) == doc
    md = paths[1].read_text()
    assert "| vpp-bare | local | iperf3 tcp x1 | 1.500 | 0.1400 | 3.000 | 0.500 | 2.90 | 0.05 |" in md
    assert "| vpp-policy-nat | iperf3 tcp x1 | vpp-bare | 0.960 | ≥ 0.90 | yes |" in md
    assert "not run: memif pods need a user-space memif peer" in md
    assert "VPP 26.06-release" in md and "ip4-lookup 61" in md
    import matplotlib.image as mpimg
    for png in paths[2:]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width = mpimg.imread(png).shape[:2]
        assert height > 100 and width > 100


def test_report_writes_markdown_and_plots_again_from_the_json(tmp_path: Path) -> None:
    import subprocess
    import sys

    pytest.importorskip("matplotlib", reason="matplotlib not installed (the perf extra): no PNG to check")
    doc = _session()
    results.write(doc, tmp_path, "t")
    md = (tmp_path / "t.md").read_text()
    for f in ("t.md", "t.png", "t_clocks.png"):
        (tmp_path / f).unlink()
    r = subprocess.run([sys.executable, "-m", "perf", "report", str(tmp_path / "t.json")], capture_output=True,
                       text=True, cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "t.md").read_text() == md
    assert (tmp_path / "t.png").exists() and (tmp_path / "t_clocks.png").exists()


def test_clock_shares_split_each_run_by_node_with_the_rest_as_other() -> None:
    doc = _session()
    run = doc["scenarios"][1]["runs"][0]
    run["vpp_runtime"][0]["nodes"].append({"name": "host-vpa0123456789ab-tx", "state": "active", "calls": 5,
                                           "vectors": 500, "clocks_per_packet": 2000.0})
    shares = dict(results.clock_shares(doc))
    assert shares["vpp-bare: iperf3 tcp x1"] == {"ip4-lookup": 61.0, "af_packet tx": 1000.0, "other": 3260.0}
    assert sum(shares["vpp-policy-nat: iperf3 tcp x1"].values()) == 4321.0
