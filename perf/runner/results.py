"""A session's results on disk: JSON (everything), a Markdown table and PNG plots.

Owns the file names (``<name>.json``, ``<name>.md``, ``<name>.png`` and
``<name>_clocks.png`` in the output directory) and what each shows: the
table has one row per scenario and load with throughput, Mpps, the kernel
baseline and the ratio to it, CPU and clocks per packet; the plots show the
same throughput next to its kernel baseline, and each run's VPP clocks per
forwarded packet split by graph node.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any


def rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per (scenario, load), for the table and the plots."""
    out = []
    for res in doc["scenarios"]:
        sc = res["scenario"]
        runs = res.get("runs") or [{"load": "-", "status": res["status"], "reason": res.get("reason")}]
        for run in runs:
            ok = run.get("status") == "ok"
            cpu = run.get("cpu_s", {})
            rts = run.get("vpp_runtime") or []
            cpp = [r["clocks_per_packet"] for r in rts if r.get("clocks_per_packet")]
            status = run.get("status") if res["status"] == "ok" else res["status"]
            reason = run.get("reason") or res.get("reason")
            out.append({
                "scenario": sc["name"], "env": sc["env"], "load": run["load"],
                "status": status, "reason": reason,
                "gbit_s": run.get("gbit_s") if ok else None, "mpps": run.get("mpps") if ok else None,
                "kernel_gbit_s": (run.get("kernel") or {}).get("gbit_s"),
                "ratio_to_kernel": run.get("ratio_to_kernel"),
                "vpp_cpu_s": cpu.get("vpp"), "agent_cpu_s": cpu.get("agent"),
                "vpp_cpu_s_per_gbit": run.get("vpp_cpu_s_per_gbit"),
                "clocks_per_packet": round(sum(cpp), 1) if cpp else None,
                "compare": run.get("compare"),
            })
    return out


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [f"# Throughput ({doc['started']})", "",
             f"Machine: {m['host']}, {m['cpu']} x{m['cpus']}, Linux {m['kernel']}; "
             f"VPP {doc.get('vpp_version') or '–'}; "
             f"{m['iperf3']}; {doc['seconds_per_run']} s per run, median of {doc.get('repeat', 1)}.", "",
             "| scenario | env | load | Gbit/s | Mpps | kernel Gbit/s | ratio to kernel | VPP CPU s | agent CPU s "
             "| VPP CPU s per Gbit | VPP clocks/pkt | status |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows(doc):
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r['reason']}"
        lines.append(f"| {r['scenario']} | {r['env']} | {r['load']} | {_fmt(r['gbit_s'])} | {_fmt(r['mpps'], 4)} | "
                     f"{_fmt(r['kernel_gbit_s'])} | {_fmt(r['ratio_to_kernel'])} | {_fmt(r['vpp_cpu_s'], 2)} | "
                     f"{_fmt(r['agent_cpu_s'], 2)} | {_fmt(r['vpp_cpu_s_per_gbit'], 2)} | "
                     f"{_fmt(r['clocks_per_packet'], 0)} | {status} |")
    targets = [r for r in rows(doc) if r["compare"]]
    if targets:
        lines += ["", "## Targets", "", "| scenario | load | vs | ratio | target | met |",
                  "|---|---|---|---:|---:|---|"]
        for r in targets:
            c = r["compare"]
            met = {True: "yes", False: "no", None: "–"}[c.get("met")]
            lines.append(f"| {r['scenario']} | {r['load']} | {c['scenario']} | {_fmt(c.get('ratio'))} | "
                         f"≥ {_fmt(c.get('target_ratio'), 2)} | {met} |")
    node_lines = []
    for res in doc["scenarios"]:
        for run in res.get("runs", []):
            for i, rt in enumerate(run.get("vpp_runtime") or []):
                top = ", ".join(f"{n['name']} {n['clocks_per_packet']:.0f}" for n in rt["nodes"][:6])
                node_lines.append(f"| {res['scenario']['name']} | {run['load']} | {i} | {top} |")
    if node_lines:
        lines += ["", "## Busiest VPP graph nodes (clocks per packet)", "",
                  "| scenario | load | VPP | nodes |", "|---|---|---:|---|"] + node_lines
    lines += ["", "Mpps: packets received by the server pod's eth0 per second (memif: by the peer VPP on the server pod's memif). Ratio to kernel: Gbit/s over the "
              "kernel baseline's for the same load in the same session. VPP clocks/pkt: all graph nodes' clocks "
              "(`show runtime`) over the IP packets VPP forwarded (both directions; summed over VPPs on the path). "
              "vpp-pg rows (memif pods): packets from the peer VPP's packet generator into the client pod's memif, "
              "counted as they arrive on the server pod's memif; Gbit/s counts UDP payload as iperf3 does; compared with iperf3 UDP of the same IP size. "
              "The peer VPP's CPU is in the JSON (`cpu_s.pod_vpp`).",
              ""]
    return "\n".join(lines)


class PlotUnavailable(RuntimeError):
    """matplotlib is missing: the JSON and Markdown are written, the PNGs are not."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as e:
        raise PlotUnavailable("matplotlib is not installed (pip install matplotlib): PNG plots not written") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot(doc: dict[str, Any], path: Path) -> None:
    plt = _pyplot()

    data = [r for r in rows(doc) if r["gbit_s"] is not None]
    labels = [f"{r['scenario']}\n{r['load']}" for r in data]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(8, 1.2 * len(data) + 2), 9))
    xs = range(len(data))
    w = 0.4
    ax1.bar([x - w / 2 for x in xs], [r["gbit_s"] for r in data], w, label="measured")
    ax1.bar([x + w / 2 for x in xs], [r["kernel_gbit_s"] or 0 for r in data], w, label="kernel baseline")
    for x, r in zip(xs, data):
        if r["ratio_to_kernel"] is not None:
            ax1.annotate(f"{r['ratio_to_kernel']:.2f}x", (x - w / 2, r["gbit_s"]), ha="center", va="bottom", fontsize=8)
    ax1.set_ylabel("Gbit/s")
    ax1.set_title(f"Throughput with kernel baseline (VPP {doc.get('vpp_version') or '-'}, {doc['machine']['host']})")
    ax1.legend()
    ax2.bar(list(xs), [r["mpps"] or 0 for r in data], 0.6, color="tab:green")
    ax2.set_ylabel("Mpps (received by the server pod)")
    for ax in (ax1, ax2):
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _node_group(name: str) -> str:
    """Interface-specific node names folded into one per driver (host-vpa1234-tx -> af_packet tx)."""
    m = re.fullmatch(r"host-.+-(tx|output)", name)
    if m:
        return f"af_packet {m.group(1)}"
    m = re.fullmatch(r"memif\d+/\d+-(tx|output)", name)
    if m:
        return f"memif {m.group(1)}"
    return name


def clock_shares(doc: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """Per run and VPP: clocks per forwarded packet split by graph node (group), the rest as "other"."""
    out = []
    for res in doc["scenarios"]:
        for run in res.get("runs", []):
            rts = run.get("vpp_runtime") or []
            for i, rt in enumerate(rts):
                if not rt.get("clocks_per_packet") or not rt.get("ip_packets"):
                    continue
                shares: dict[str, float] = {}
                for n in rt["nodes"]:
                    g = _node_group(n["name"])
                    shares[g] = shares.get(g, 0.0) + n["vectors"] * n["clocks_per_packet"] / rt["ip_packets"]
                shares["other"] = max(0.0, rt["clocks_per_packet"] - sum(shares.values()))
                suffix = f" (VPP {i + 1})" if len(rts) > 1 else ""
                out.append((f"{res['scenario']['name']}: {run['load']}{suffix}", shares))
    return out


def plot_clocks(doc: dict[str, Any], path: Path, groups: int = 12) -> bool:
    shares = clock_shares(doc)
    if not shares:
        return False
    plt = _pyplot()
    totals: dict[str, float] = {}
    for _, sh in shares:
        for g, v in sh.items():
            if g != "other":
                totals[g] = totals.get(g, 0.0) + v
    # our own nodes (policy, service NAT) always get a colour of their own: they are what the targets are about
    ours = [g for g in totals if g.startswith(("kpol", "cnat", "acl"))]
    shown = ours + [g for g in sorted(totals, key=lambda g: -totals[g]) if g not in ours][:max(0, groups - len(ours))]
    fig, ax = plt.subplots(figsize=(12, 0.45 * len(shares) + 2.5))
    left = [0.0] * len(shares)
    colors = plt.get_cmap("tab20").colors
    for j, g in enumerate(shown + ["other"]):
        vals = [sh.get(g, 0.0) if g != "other" else sh.get("other", 0.0) + sum(v for k, v in sh.items()
                                                                                 if k not in shown and k != "other")
                for _, sh in shares]
        ax.barh(range(len(shares)), vals, left=left, label=g, color=colors[j % 20] if g != "other" else "lightgrey")
        left = [a + b for a, b in zip(left, vals)]
    ax.set_yticks(range(len(shares)))
    ax.set_yticklabels([label for label, _ in shares], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("VPP clocks per forwarded IP packet (show runtime), by graph node")
    ax.set_title("Where VPP spends its clocks, per run")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def write(doc: dict[str, Any], out_dir: Path, name: str = "throughput") -> list[Path]:
    """The files written: JSON, Markdown, the throughput PNG and (with runtime data) the clocks PNG."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.json", out_dir / f"{name}.md", out_dir / f"{name}.png"]
    paths[0].write_text(json.dumps(doc, indent=2) + "\n")
    paths[1].write_text(markdown(doc))
    plot(doc, paths[2])  # PlotUnavailable after the JSON and Markdown are on disk
    if plot_clocks(doc, out_dir / f"{name}_clocks.png"):
        paths.append(out_dir / f"{name}_clocks.png")
    return paths
