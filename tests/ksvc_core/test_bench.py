"""The core micro-benchmark builds, runs (a quick variant) and writes its JSON.
Figures are not asserted: timing is the benchmark's business, not a test's."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .conftest import CORE_SOURCES, compile_c


def test_bench_runs_and_writes_every_case(build_dir: Path, tmp_path: Path):
    exe = compile_c(build_dir / "bench", [*CORE_SOURCES, "bench.c"], ["-O2"])
    out = tmp_path / "ksvc_core.json"
    res = subprocess.run([str(exe), str(out), "quick"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert {r["case"] for r in data["results"]} == {
        "new_session", "forward_hit", "reply_hit", "pass_not_a_service", "rewrite_ipv4_tcp"}
    assert all(r["ns_per_packet"] > 0 for r in data["results"])
