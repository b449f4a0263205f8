"""Exec time of the CNI plugin, as a container runtime pays it once per pod operation.

Runs ``python -m vppagent.cni.plugin`` (and the installed ``vppagent-cni``
entry point when present) N times for VERSION and for ADD against a real
gRPC CniBackend on a unix socket that answers at once (tests/cni_plugin's
fake agent), so the figure is the plugin's own cost: interpreter start,
imports, validation, one gRPC round trip, printing.

    python -m perf.cni_exec [--runs 50] [--out perf/results]

Prints p50/p99 per case and writes ``cni_exec.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from testbed.fake_cni_agent import RunningAgent  # noqa: E402


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_runs(cmd: list[str], env: dict[str, str], stdin: bytes, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        r = subprocess.run(cmd, input=stdin, env=env, capture_output=True, timeout=60)
        out.append((time.perf_counter() - start) * 1000)
        if r.returncode != 0:
            raise SystemExit(f"{cmd} failed ({r.returncode}): {r.stdout!r} {r.stderr!r}")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--out", type=Path, default=ROOT / "perf" / "results")
    args = p.parse_args()

    commands = {"python -m vppagent.cni.plugin": [sys.executable, "-m", "vppagent.cni.plugin"]}
    entry = Path(sys.executable).parent / "vppagent-cni"
    if entry.exists():
        commands["vppagent-cni entry point"] = [str(entry)]

    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    results = []
    with RunningAgent() as agent:
        add_env = {**base, "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "perf0",
                   "CNI_NETNS": "/var/run/netns/perf", "CNI_IFNAME": "eth0",
                   "CNI_PATH": "/opt/cni/bin", "CNI_ARGS": "K8S_POD_NAMESPACE=default;K8S_POD_NAME=p"}
        netconf = json.dumps({"cniVersion": "1.0.0", "name": "k8s", "type": "vppagent-cni",
                              "agentSocket": agent.socket}).encode()
        for label, cmd in commands.items():
            for command, env, stdin in (("VERSION", {**base, "CNI_COMMAND": "VERSION"}, b""),
                                        ("ADD", add_env, netconf)):
                time_runs(cmd, env, stdin, 2)  # warm the page cache and .pyc files
                ms = time_runs(cmd, env, stdin, args.runs)
                row = {"how": label, "command": command, "runs": args.runs,
                       "p50_ms": round(statistics.median(ms), 1),
                       "p99_ms": round(percentile(ms, 0.99), 1),
                       "min_ms": round(min(ms), 1), "max_ms": round(max(ms), 1)}
                results.append(row)
                print(f"{label:32} {command:8} p50 {row['p50_ms']:7.1f} ms   "
                      f"p99 {row['p99_ms']:7.1f} ms   (n={args.runs})")
        assert len(agent.calls("Add")) == (args.runs + 2) * len(commands)

    doc = {"benchmark": "cni_exec",
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "kernel": platform.release()},
           "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cni_exec.json").write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
