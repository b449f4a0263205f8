"""One runner session: the named scenarios, their kernel baselines and comparison targets, measured.

Owns the order of a session (kernel baselines first, each running every
load of the scenarios that refer to it, then comparison targets, then the
rest), measuring around every load run (VPP runtime cleared before and read
after, VPP and agent CPU, packets delivered to the server pod) and the
ratios: every VPP figure to its kernel baseline, and a scenario to its
``compare_to`` with the target met or not.
"""
from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from perf.runner.envs import EnvUnavailable, open_env
from perf.runner.envs.common import EnvError, Setup
from perf.runner.envs import pod_vpp
from perf.runner.loadgen import iperf3, trex, vpp_pg
from perf.runner.measure import runtime
from perf.runner.measure.cpu import CpuMeter, ProcessGone
from perf.runner.scenario import Load, Scenario, find
from vppagent.vpp.errors import VppError

log = logging.getLogger("perf.runner")


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    ver = subprocess.run(["iperf3", "--version"], capture_output=True, text=True).stdout.split("\n", 1)[0]
    return {"host": platform.node(), "kernel": platform.release(), "cpu": model, "cpus": os.cpu_count(),
            "python": platform.python_version(), "iperf3": ver.strip()}


def is_baseline(sc: Scenario) -> bool:
    """A kernel path: the local kernel env, or a cluster's pods on the nodes' own network."""
    return sc.env == "kernel" or (sc.env == "kubectl" and bool(sc.kubectl.get("host_network")))


def plan(names: list[str]) -> list[Scenario]:
    """The scenarios to run, in order: kernel baselines (with the loads of their users), targets, the rest."""
    asked = [find(n) for n in names]
    by_name = {s.name: s for s in asked}
    for s in list(by_name.values()):
        for extra in (s.baseline, s.compare_to):
            if extra and extra not in by_name:
                by_name[extra] = find(extra)
                if by_name[extra].baseline and by_name[extra].baseline not in by_name:
                    by_name[by_name[extra].baseline] = find(by_name[extra].baseline)
    for s in list(by_name.values()):
        if s.baseline and not is_baseline(by_name[s.baseline]):
            raise EnvError(f"{s.name}: baseline {s.baseline} is not a kernel scenario "
                           "(env kernel, or kubectl with host_network)")
    for s in by_name.values():
        if s.env == "kubectl":  # its keys are checked now, not after the local scenarios ran
            from perf.runner.envs.kubectl import render
            render(s)
    kernels = []
    for s in by_name.values():
        if not is_baseline(s):
            continue
        loads = list(s.load)
        for user in by_name.values():
            if user.baseline == s.name:
                loads += [ld.comparable() for ld in user.load if ld.comparable() not in loads]
        kernels.append(dataclasses.replace(s, load=tuple(loads)))
    targets = [by_name[s.compare_to] for s in by_name.values() if s.compare_to]
    rest = [s for s in by_name.values() if not is_baseline(s) and s not in targets]
    seen: set[str] = set()
    return [s for s in kernels + targets + rest if not (s.name in seen or seen.add(s.name))]


def _measure_pg(setup: Setup, load: Load, seconds: int) -> dict[str, Any]:
    """The packet generator in the client memif pod, with the same CPU and runtime measurements."""
    meter = CpuMeter(setup.pids)
    for vpp in setup.vpps:
        runtime.clear(vpp)
    meter.start()
    res = vpp_pg.run(setup.pod_vpps["peer"], setup.pod_ips["client"], setup.target_ip, load.length or 92, seconds,
                     pod_vpp.SERVER_IF)
    cpu = meter.stop()
    runtimes = [runtime.read(v) for v in setup.vpps]
    out: dict[str, Any] = {"status": "ok", "gbit_s": round(res.gbit_s, 3), "mpps": round(res.mpps, 4),
                           "seconds": round(res.seconds, 2), "server_rx_packets": res.received,
                           "pg_sent_packets": res.sent, "cpu_s": cpu,
                           "gbit_s_counts": "UDP payload, as iperf3 counts it"}
    if "vpp" in cpu and res.gbit_s:
        out["vpp_cpu_s_per_gbit"] = round(cpu["vpp"] / (res.gbit_s * res.seconds), 3)
    out["vpp_runtime"] = [rt.summary() for rt in runtimes]
    # What the node's VPP took in from the client pod, delivered or not (memif rings that overflow
    # towards a starved server pod drop the rest).
    out["node_vpp_ip_mpps"] = round(runtimes[0].ip_packets / res.seconds / 1e6, 4) if runtimes else None
    return out


def _measure(setup: Setup, load: Load, seconds: int) -> dict[str, Any]:
    return _measure_pg(setup, load, seconds) if load.tool == "vpp-pg" else _measure_iperf3(setup, load, seconds)


def _measure_iperf3(setup: Setup, load: Load, seconds: int) -> dict[str, Any]:
    meter = CpuMeter(setup.pids)
    for vpp in setup.vpps:
        runtime.clear(vpp)
    rx0 = setup.server_rx_packets()
    meter.start()
    res = iperf3.run(setup.client_prefix, setup.server_prefix, load, setup.target_ip, seconds)
    cpu = meter.stop()
    rx1 = setup.server_rx_packets()
    runtimes = [runtime.read(v) for v in setup.vpps]
    packets = (rx1 - rx0) if rx0 is not None and rx1 is not None else None
    mpps = packets / res.seconds / 1e6 if packets is not None and res.seconds else None
    out: dict[str, Any] = {
        "status": "ok", "gbit_s": round(res.gbit_s, 3), "mpps": round(mpps, 4) if mpps is not None else None,
        "sent_gbit_s": round(res.sent_gbit_s, 3), "seconds": round(res.seconds, 2),
        "server_rx_packets": packets, "cpu_s": cpu,
    }
    if res.protocol == "tcp":
        out["retransmits"] = res.retransmits
    else:
        out.update(udp_packets=res.packets, udp_lost_packets=res.lost_packets,
                   udp_lost_percent=round(res.lost_percent or 0.0, 2),
                   udp_delivered_mpps=round(res.udp_mpps or 0.0, 4))
    if "vpp" in cpu and res.gbit_s:
        out["vpp_cpu_s_per_gbit"] = round(cpu["vpp"] / (res.gbit_s * res.seconds), 3)
    if runtimes:
        out["vpp_runtime"] = [rt.summary() for rt in runtimes]
    return out


def _median_run(setup: Setup, load: Load, seconds: int, repeat: int) -> dict[str, Any]:
    """The run with the median throughput of ``repeat`` runs, with every run's Gbit/s kept."""
    samples = [_measure(setup, load, seconds) for _ in range(repeat)]
    ordered = sorted(samples, key=lambda r: r["gbit_s"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    if repeat > 1:
        chosen["samples_gbit_s"] = [r["gbit_s"] for r in samples]
    return chosen


def run_scenario(sc: Scenario, seconds: int, out_dir: Path, repeat: int = 1) -> dict[str, Any]:
    result: dict[str, Any] = {"scenario": sc.as_dict(), "runs": []}
    t0 = time.monotonic()
    try:
        with open_env(sc) as setup:
            result["env"] = setup.notes
            result["pids"] = setup.pids
            if setup.vpps:
                result["vpp_version"] = runtime.version(setup.vpps[0])
            for load in sc.load:
                row: dict[str, Any] = {"load": load.label, "spec": dataclasses.asdict(load)}
                if load.tool == "trex":
                    path = trex.write(load.profile, out_dir)
                    row["trex_profile"] = str(path)
                    why = trex.unavailable() or ("TRex needs its ports cabled to the data plane's NICs; "
                                                 "local netns pods have none (see perf/README.md)")
                    row.update(status="not run", reason=why)
                else:
                    log.info("load run", extra={"scenario": sc.name, "load": load.label})
                    print(f"  {sc.name}: {load.label} for {seconds} s x{repeat} ...", flush=True)
                    try:
                        row.update(_median_run(setup, load, seconds, repeat))
                    except (iperf3.Iperf3Error, vpp_pg.PgError, ProcessGone) as e:
                        row.update(status="failed", reason=str(e))
                result["runs"].append(row)
        result["status"] = "ok"
    except EnvUnavailable as e:
        result.update(status="not run", reason=str(e))
    except (EnvError, OSError, RuntimeError, VppError) as e:
        log.exception("scenario failed", extra={"scenario": sc.name})
        result.update(status="failed", reason=f"{type(e).__name__}: {e}")
    result["wall_s"] = round(time.monotonic() - t0, 1)
    return result


def _by_label(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["load"]: r for r in result.get("runs", []) if r.get("status") == "ok"}


def _comparable_label(run: dict[str, Any]) -> str:
    return Load(**run["spec"]).comparable().label if "spec" in run else run["load"]


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def add_ratios(results: dict[str, dict[str, Any]]) -> None:
    """Each run's ratio to its kernel baseline, and each scenario's to its compare_to target."""
    for res in results.values():
        sc = res["scenario"]
        base = _by_label(results[sc["baseline"]]) if sc.get("baseline") in results else {}
        target = _by_label(results[sc["compare_to"]]) if sc.get("compare_to") in results else {}
        for run in res.get("runs", []):
            if run.get("status") != "ok":
                continue
            if sc.get("baseline"):
                b = base.get(_comparable_label(run))
                run["kernel"] = ({"scenario": sc["baseline"], "load": b["load"], "gbit_s": b["gbit_s"],
                                  "mpps": b["mpps"]}
                                 if b else {"scenario": sc["baseline"], "missing": "the baseline run did not succeed"})
                run["ratio_to_kernel"] = _ratio(run["gbit_s"], b and b["gbit_s"])
                run["mpps_ratio_to_kernel"] = _ratio(run["mpps"], b and b["mpps"])
            if sc.get("compare_to"):
                t = target.get(run["load"]) or target.get(_comparable_label(run))
                ratio = _ratio(run["gbit_s"], t and t["gbit_s"])
                run["compare"] = {"scenario": sc["compare_to"], "load": t and t["load"], "gbit_s": t and t["gbit_s"],
                                  "ratio": ratio,
                                  "target_ratio": sc.get("target_ratio"),
                                  "met": (ratio >= sc["target_ratio"]) if ratio is not None and sc.get("target_ratio")
                                  else None}


def run_session(names: list[str], seconds: int, out_dir: Path, repeat: int = 1) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    scenarios = plan(names)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results: dict[str, dict[str, Any]] = {}
    for sc in scenarios:
        print(f"scenario {sc.name} ({sc.env})", flush=True)
        results[sc.name] = run_scenario(sc, seconds, out_dir, repeat)
        if results[sc.name]["status"] != "ok":
            print(f"  {results[sc.name]['status']}: {results[sc.name].get('reason')}", flush=True)
    add_ratios(results)
    version = next((r["vpp_version"] for r in results.values() if r.get("vpp_version")), None)
    return {"machine": machine(), "vpp_version": version, "started": started, "seconds_per_run": seconds,
            "repeat": repeat,
            "asked": names, "scenarios": list(results.values())}
