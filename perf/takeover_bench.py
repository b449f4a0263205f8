"""Uplink takeover time with a real VPP, in a private node/peer namespace pair.

    VPPAGENT_VPP_BIN=/opt/vpp/bin/vpp python -m perf.takeover_bench [--runs 5] [--out perf/results]

Each run, inside a fresh node netns whose veth "uplink" leads to a peer netns:
start VPP with the rendered startup.conf (``vpp_start_s``), then take over
(``takeover_s``: host veth already made; af_packet on the uplink and the
veth, L2 cross-connect, uplink quarantined, addresses and routes moved),
then ping the peer until it answers through VPP (``first_ping_s``, from the
end of the takeover, includes ARP through VPP), then stop VPP and restore
(``restore_s``); the restored uplink is compared with the original
(``exact``). Prints medians; writes ``takeover.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from startup import linkstate, netns  # noqa: E402
from startup.manager import BringUpConfig  # noqa: E402
from startup.supervisor import BringUp  # noqa: E402


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def make_pair() -> tuple[str, str]:
    tag = secrets.token_hex(3)
    node, peer = f"vpa-bnode-{tag}", f"vpa-bpeer-{tag}"
    _ip("netns", "add", node)
    _ip("netns", "add", peer)
    try:
        for ns in (node, peer):
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0",
                            "net.ipv6.conf.all.accept_dad=0"], check=True, capture_output=True)
        _ip("-n", node, "link", "add", "uplink0", "type", "veth", "peer", "name", "peer0", "netns", peer)
        for ns, ifn, ip in ((node, "uplink0", "10.77.0.1/24"), (peer, "peer0", "10.77.0.2/24")):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", ip, "dev", ifn)
            _ip("-n", ns, "link", "set", ifn, "up")
        _ip("-n", node, "route", "add", "default", "via", "10.77.0.2")
        from startup import ethtool
        netns.run_in(peer, ethtool.disable_offloads, "peer0")
    except BaseException:
        remove_pair(node, peer)
        raise
    return node, peer


def remove_pair(node: str, peer: str) -> None:
    for ns in (node, peer):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def one_run(vpp_bin: str, api_dir: str | None, state: Path) -> dict:
    before = linkstate.capture("uplink0")
    cfg = BringUpConfig(state_dir=state, vpp_bin=vpp_bin, api_dir=api_dir)
    b = BringUp(cfg).start()
    t_done = time.monotonic()
    first_ping = None
    try:
        for _ in range(100):
            if subprocess.run(["ping", "-c", "1", "-W", "1", "10.77.0.2"], capture_output=True).returncode == 0:
                first_ping = time.monotonic() - t_done
                break
    finally:
        t0 = time.monotonic()
        b.stop()
        restore_s = time.monotonic() - t0
    after = linkstate.capture("uplink0")
    differences = linkstate.diff(before, after)
    return {"vpp_start_s": b.timings.vpp_start, "takeover_s": b.timings.takeover,
            "first_ping_s": first_ping, "restore_s": restore_s,
            "exact": not differences, **({"differences": differences} if differences else {})}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=str(REPO / "perf" / "results"))
    ap.add_argument("--api-dir", default=os.environ.get("VPPAGENT_API_DIR") or
                    str(REPO.parent / "shared" / "vpp-api" / "v26.06"))
    a = ap.parse_args()
    vpp_bin = os.environ.get("VPPAGENT_VPP_BIN")
    if not vpp_bin:
        print("set VPPAGENT_VPP_BIN to a vpp binary", file=sys.stderr)
        return 2
    node, peer = make_pair()
    runs = []
    try:
        with tempfile.TemporaryDirectory(prefix="vpa-takeover-") as tmp:
            for i in range(a.runs):
                runs.append(netns.run_in(node, one_run, vpp_bin, a.api_dir, Path(tmp) / f"s{i}"))
                print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in runs[-1].items()}))
    finally:
        remove_pair(node, peer)

    def med(k: str) -> float | None:
        vals = [r[k] for r in runs if r[k] is not None]
        return round(statistics.median(vals), 4) if vals else None

    result = {
        "benchmark": "takeover",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
        "vpp": vpp_bin, "driver": "af_packet", "runs": a.runs,
        "median": {k: med(k) for k in ("vpp_start_s", "takeover_s", "first_ping_s", "restore_s")},
        "all_exact": all(r["exact"] for r in runs),
        "target": "takeover_s < 2",
        "per_run": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in runs],
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "takeover.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["median"]), "all exact:", result["all_exact"])
    return 0 if result["all_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
