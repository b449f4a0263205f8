"""Node-to-node connectivity and encryption: control-plane costs now, data-plane throughput later.

    python -m perf.encryption_bench [--peers 100] [--out perf/results]

Part 1 (always; against the VPP *emulator*, a test double run as a separate
process, so these are control-plane figures only):

- key derivation rate (X25519 + HKDF-SHA256 per pair, ``ipsec.derive_pair``);
- for each pair outcome (flat, ipip, vxlan, ipsec, wireguard, blocked):
  programming ``--peers`` peer nodes from an empty VPP (seconds, VPP calls),
  and a restarted agent adopting it (calls: the target is 0 mutating calls);
- the control-plane part of a live switch: every pair goes from clear ipip
  to IPsec (both annotations flipped), time from the new cluster state to
  VPP programmed, and the same for one rekey phase (a peer's new epoch).
  The watch latency between the API server and the agents comes on top.

Part 2 (``--data-plane``, needs root and a real VPP in VPPAGENT_VPP_BIN):
two private VPPs joined by a veth underlay, a pod netns behind each
(``testbed/realnet.py``, our kpod plugin loaded); per mode (flat/none, ipip,
vxlan, ipsec, wireguard) an iperf3 TCP run pod to pod (``--seconds``), with
both VPPs' CPU time during the run (CPU seconds per Gbit/s), first with the
pods' offloads on (the agent's default), then off (labelled); then a live switch from
ipip to IPsec under a 100 Hz ping: packets lost and the time from the
annotation change until ESP is seen on the underlay (this includes no API
server: the new cluster state is handed to both features directly).
Kernel baselines: this machine's kernel has no ESP, GCM or WireGuard
module (see DESIGN.md) and wireguard-go is not installed, so ``ip xfrm``
and wireguard-go runs are reported as not run, with that reason.

Prints a table; writes ``encryption_bench.json``.
"""
from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
import platform
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from ipsec import NodeKey, PairEpoch, RekeyTimers, derive_pair  # noqa: E402
from testbed.emulator.process import start_emulator_process  # noqa: E402
from vppagent.connectivity import EncryptionSettings, NodeConnectivity  # noqa: E402
from vppagent.model.k8s import Node  # noqa: E402
from vppagent.model.k8s.fields import FrozenMap  # noqa: E402
from vppagent.reconcile import Intent, Key, Reconciler  # noqa: E402
from vppagent.kinds.loopback_kind import KIND as LOOPBACK_KIND  # noqa: E402
from vppagent.kinds.loopback_kind import Loopback, LoopbackDescriptor
from vppagent.vpp.client import VppClient  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLUSTER = ipaddress.ip_network("10.244.0.0/16")
GATEWAY = Loopback("pod-gateway", True, ("169.254.1.1/32",), 0)
ME = "node-0000"


def api_dir() -> str:
    return os.environ.get("VPPAGENT_API_DIR") or str(REPO.parent / "shared" / "vpp-api" / "v26.06")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Cluster:
    nodes: dict


def node(i: int, **ann: str) -> Node:
    return Node(f"node-{i:04d}", pod_cidrs=(ipaddress.ip_network(f"10.244.{i}.0/24"),),
                internal_ips=(ipaddress.ip_address(f"192.0.{2 + i // 250}.{1 + i % 250}"),),
                annotations=FrozenMap(ann))


class Peerless:
    """The peers' side of key agreement, without their VPPs: their keys and annotations."""

    def __init__(self, n: int, key_dir: Path) -> None:
        self.keys = {i: (NodeKey.generate(), NodeKey.generate()) for i in range(1, n + 1)}
        self.key_dir = key_dir

    def annotations(self, i: int, kind: str, epoch: int = 0) -> dict[str, str]:
        ik, wk = self.keys[i]
        return {"vppagent.io/encryption": kind, "vppagent.io/ipsec-public-key": ik.annotation,
                "vppagent.io/wireguard-public-key": wk.annotation, "vppagent.io/ipsec-key-epoch": str(epoch)}


def make_agent(vpp: VppClient, key_dir: Path, mode: str, clock: Clock) -> tuple[NodeConnectivity, Reconciler]:
    # The emulator lacks add_node_next: its VXLAN tunnels keep the static l2-input decap next.
    f = NodeConnectivity(ME, (CLUSTER,), mode=mode, unnumbered=Key(LOOPBACK_KIND, "pod-gateway"),
                         encryption=EncryptionSettings(key_dir, timers=RekeyTimers(5, 30)), clock=clock,
                         vxlan_decap_next=lambda vpp, v6: 1)
    rec = Reconciler(vpp)
    rec.register(LoopbackDescriptor())
    for d in f.descriptors():
        rec.register(d)
    return f, rec


def cluster_for(peers: Peerless, n: int, kind: str, me_ann: dict[str, str], required: bool = False,
                epochs: dict[int, int] | None = None) -> Cluster:
    nodes = {ME: node(0, **me_ann)}
    for i in range(1, n + 1):
        ann = peers.annotations(i, kind, (epochs or {}).get(i, 0))
        if required:
            ann["vppagent.io/encryption-required"] = "true"
        nodes[f"node-{i:04d}"] = node(i, **ann)
    return Cluster(nodes)


def converge(f: NodeConnectivity, rec: Reconciler, cluster: Cluster) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    intents, _ = f.desired(cluster)
    rec.set_desired([Intent(LOOPBACK_KIND, GATEWAY)] + intents)
    r = rec.converge()
    if rec.failures:
        raise SystemExit(f"programming failed: {[(str(k), str(v.error)) for k, v in rec.failures.items()]}")
    return time.perf_counter() - t0, r.calls, r.changed


def own_annotations(f: NodeConnectivity, kind: str) -> dict[str, str]:
    return {"vppagent.io/encryption": kind, **f.annotations()}


def bench_keys(n: int = 2000) -> float:
    a, b = NodeKey.generate(), NodeKey.generate()
    t0 = time.perf_counter()
    for e in range(n):
        derive_pair("a", a, "b", b.public, PairEpoch(e, 0))
    return n / (time.perf_counter() - t0)


def bench_outcome(stack: ExitStack, work: Path, peers: Peerless, n: int, outcome: str) -> dict:
    emu = start_emulator_process(stack, api_dir())
    vpp = VppClient(emu.socket, api_dir()).connect()
    stack.callback(vpp.close)
    mode = {"flat": "flat", "vxlan": "vxlan"}.get(outcome, "ipip")
    kind = outcome if outcome in ("ipsec", "wireguard") else "none"
    key_dir = work / outcome / "keys"
    clock = Clock()
    f, rec = make_agent(vpp, key_dir, mode, clock)
    peer_kind = "ipsec" if outcome == "blocked" else kind
    my_kind = "wireguard" if outcome == "blocked" else kind
    f.desired(cluster_for(peers, n, peer_kind, {"vppagent.io/encryption": my_kind}))  # makes keys
    cluster = cluster_for(peers, n, peer_kind, own_annotations(f, my_kind), required=outcome == "blocked")
    cold_s, cold_calls, created = converge(f, rec, cluster)
    got = set(f.pairs.values())
    want = {"flat": "none", "ipip": "none", "vxlan": "none"}.get(outcome, outcome)
    assert got == {want}, (outcome, got)
    f2, rec2 = make_agent(vpp, key_dir, mode, clock)
    t0 = time.perf_counter()
    rec2.resync()
    intents, _ = f2.desired(cluster)
    rec2.set_desired([Intent(LOOPBACK_KIND, GATEWAY)] + intents)
    r = rec2.converge()
    adopt_s = time.perf_counter() - t0
    return {"outcome": outcome, "peers": n, "objects": len(rec.desired), "cold_s": round(cold_s, 3),
            "cold_calls": cold_calls, "created": created, "adopt_s": round(adopt_s, 3),
            "adopt_changes": r.changed}


def bench_switch(stack: ExitStack, work: Path, peers: Peerless, n: int) -> dict:
    emu = start_emulator_process(stack, api_dir())
    vpp = VppClient(emu.socket, api_dir()).connect()
    stack.callback(vpp.close)
    clock = Clock()
    f, rec = make_agent(vpp, work / "switch" / "keys", "ipip", clock)
    f.desired(cluster_for(peers, n, "none", {"vppagent.io/encryption": "ipsec"}))  # keys exist
    converge(f, rec, cluster_for(peers, n, "none", own_annotations(f, "none")))
    out = {"peers": n}
    out["clear_to_ipsec_s"], out["clear_to_ipsec_calls"], _ = converge(
        f, rec, cluster_for(peers, n, "ipsec", own_annotations(f, "ipsec")))
    epochs = {i: 1 for i in range(1, n + 1)}
    rekeyed = cluster_for(peers, n, "ipsec", own_annotations(f, "ipsec"), epochs=epochs)
    for phase, dt in (("rekey_add_inbound", 0), ("rekey_switch_outbound", 5), ("rekey_drop_old", 30)):
        clock.now += dt
        out[f"{phase}_s"], out[f"{phase}_calls"], _ = converge(f, rec, rekeyed)
    out["ipsec_to_wireguard_s"], out["ipsec_to_wireguard_calls"], _ = converge(
        f, rec, cluster_for(peers, n, "wireguard", own_annotations(f, "wireguard")))
    return out


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def data_plane(seconds: int) -> dict:
    """iperf3 across two real VPPs per mode, and the disruption of a live switch (see the doc)."""
    import shutil
    import subprocess

    from testbed.realnet import RealTopology, UplinkCapture, have_real_vpp

    why = have_real_vpp()
    if why:
        return {"skipped": why}
    if shutil.which("iperf3") is None:
        return {"skipped": "iperf3 not installed"}
    out: dict = {"kernel_xfrm": "not run: this kernel has no ESP/GCM (no ip xfrm IPsec)",
                 "wireguard_go": ("not run: wireguard-go not installed" if shutil.which("wireguard-go") is None
                                  else "not run: not implemented yet")}
    from testbed import plugins
    try:
        kpod = plugins.plugin_dirs("kpod")
    except plugins.Unavailable as e:
        return {"skipped": f"pod offloads need the kpod plugin: {e}"}
    topo = RealTopology(api_dir(), os.environ["VPPAGENT_VPP_BIN"], plugin_dirs=kpod, pod_gso_fix=True).start()
    work = Path(tempfile.mkdtemp(prefix="vppagent-encbench-dp-"))
    try:
        clock = Clock()
        b_ip = topo.nodes["node-b"].pod_ip
        # First as the agent runs pods (pod_offloads on: kpod, VPP's gso feature on tunnels and
        # WireGuard), then with the pods' offloads off, labelled: the rows before that default.
        runs = []
        for offloads in ("on", "off"):
            if offloads == "off":
                topo.disable_pod_offloads()
            for mode, kind in (("flat", "none"), ("ipip", "none"), ("vxlan", "none"), ("ipip", "ipsec"),
                               ("ipip", "wireguard")):
                runs.append(_iperf3_row(topo, real_agents(topo, work / f"{mode}-{kind}-{offloads}", mode, clock),
                                        mode, kind, offloads, seconds))
        out["iperf3"] = runs
        # Live switch ipip -> ipsec under a 100 Hz ping.
        agents = real_agents(topo, work / "switch", "ipip", clock)
        cluster = real_cluster("none")
        real_program(agents, cluster)
        ping = subprocess.Popen(["ip", "netns", "exec", topo.nodes["node-a"].pod_ns, "ping", "-i", "0.01",
                                 "-w", "6", b_ip], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        with UplinkCapture([n.uplink for n in topo.nodes.values()]) as cap:
            t0 = time.monotonic()
            for n in cluster.nodes:
                cluster.nodes[n] = dataclasses.replace(
                    cluster.nodes[n], annotations=FrozenMap({**cluster.nodes[n].annotations,
                                                             "vppagent.io/encryption": "ipsec"}))
            real_program(agents, cluster)
            programmed = time.monotonic() - t0
            while 50 not in cap.ip_protocols() and time.monotonic() - t0 < 5:
                time.sleep(0.005)
            esp_after = time.monotonic() - t0 if 50 in cap.ip_protocols() else None
        text, _ = ping.communicate(timeout=20)
        stats = next((line for line in text.splitlines() if "packets transmitted" in line), text[-200:])
        out["switch_ipip_to_ipsec"] = {"programmed_s": round(programmed, 3),
                                       "esp_on_wire_after_s": round(esp_after, 3) if esp_after else None,
                                       "ping_100hz": stats}
        real_clear(agents)
    finally:
        topo.close()
        import shutil as _sh
        _sh.rmtree(work, ignore_errors=True)
    return out


def _iperf3_row(topo, agents, mode: str, kind: str, offloads: str, seconds: int) -> dict:
    """One iperf3 TCP run pod to pod with ``agents`` programmed, and both VPPs' CPU time."""
    import subprocess

    b_ip = topo.nodes["node-b"].pod_ip
    real_program(agents, real_cluster(kind))
    topo.exec("node-a", "ping", "-c", "3", "-i", "0.2", "-W", "2", b_ip)  # handshakes, ARP
    server = subprocess.Popen(["ip", "netns", "exec", topo.nodes["node-b"].pod_ns, "iperf3", "-s", "-1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    pids = [n.vpp_proc.pid for n in topo.nodes.values()]
    cpu0 = sum(_cpu_s(p) for p in pids)
    row = {"mode": mode, "encryption": kind, "pod_offloads": offloads}
    print(f"iperf3 {mode}/{kind}, pod offloads {offloads} ...", flush=True)
    try:
        r = topo.exec("node-a", "iperf3", "-c", b_ip, "-t", str(seconds), "-J", "--connect-timeout",
                      "3000", timeout=seconds + 20)
        cpu = sum(_cpu_s(p) for p in pids) - cpu0
        j = json.loads(r.stdout)
        bps = j["end"]["sum_received"]["bits_per_second"]
        row.update(gbit_s=round(bps / 1e9, 3), vpp_cpu_s=round(cpu, 2),
                   vpp_cpu_s_per_gbit=round(cpu / (bps / 1e9 * seconds), 2) if bps else None,
                   retransmits=j["end"].get("sum_sent", {}).get("retransmits"))
    except subprocess.TimeoutExpired:
        row["error"] = "iperf3 hung (no result within the run time + 20 s)"
    except (ValueError, KeyError):
        row["error"] = (r.stdout + r.stderr)[-300:]
    finally:
        server.kill()
        server.wait(timeout=10)
        real_clear(agents)
    return row


def real_agents(topo, key_dir: Path, mode: str, clock: Clock):
    out = []
    for name, node in topo.nodes.items():
        f = NodeConnectivity(name, (CLUSTER,), mode=mode, unnumbered=Key(LOOPBACK_KIND, "pod-gateway"),
                             encryption=EncryptionSettings(key_dir / name, timers=RekeyTimers(5, 30)), clock=clock)
        rec = Reconciler(node.vpp)
        rec.register(LoopbackDescriptor())
        for d in f.descriptors():
            rec.register(d)
        out.append((f, rec))
    return out


def real_cluster(kind: str) -> Cluster:
    return Cluster({n: Node(n, pod_cidrs=(ipaddress.ip_network(f"10.244.{i}.0/24"),),
                            internal_ips=(ipaddress.ip_address(f"192.0.2.{i}"),),
                            annotations=FrozenMap({"vppagent.io/encryption": kind}))
                    for i, n in ((1, "node-a"), (2, "node-b"))})


def real_program(agents, cluster: Cluster) -> None:
    for _ in range(2):  # compute, publish keys, compute again
        for f, rec in agents:
            converge(f, rec, cluster)
        for f, _ in agents:
            node = cluster.nodes[f.node_name]
            cluster.nodes[f.node_name] = dataclasses.replace(
                node, annotations=FrozenMap({**node.annotations, **f.annotations()}))


def real_clear(agents) -> None:
    for _, rec in agents:
        rec.set_desired([])
        rec.converge()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", type=int, default=100)
    ap.add_argument("--out", default=str(REPO / "perf" / "results"))
    ap.add_argument("--data-plane", action="store_true", help="also run part 2 (root, VPPAGENT_VPP_BIN)")
    ap.add_argument("--seconds", type=int, default=5, help="iperf3 run length (part 2)")
    args = ap.parse_args()
    if not 1 <= args.peers <= 250:
        raise SystemExit("--peers must be 1..250 (one /24 pod CIDR per peer in 10.244.0.0/16)")
    results: dict = {"host": platform.node(), "python": platform.python_version(),
                     "backend": "emulator (test double, separate process): control plane only"}
    results["derive_pairs_per_s"] = round(bench_keys())
    print(f"key derivation (X25519 + HKDF-SHA256, both directions): {results['derive_pairs_per_s']} pairs/s")
    with tempfile.TemporaryDirectory(prefix="vppagent-encbench-") as d, ExitStack() as stack:
        work = Path(d)
        peers = Peerless(args.peers, work / "peers")
        rows = []
        for outcome in ("flat", "ipip", "vxlan", "ipsec", "wireguard", "blocked"):
            rows.append(bench_outcome(stack, work, peers, args.peers, outcome))
        results["programming"] = rows
        print(f"\n{'outcome':<10} {'peers':>5} {'objects':>7} {'cold s':>8} {'calls':>6} {'adopt s':>8} {'adopt chg':>9}")
        for r in rows:
            print(f"{r['outcome']:<10} {r['peers']:>5} {r['objects']:>7} {r['cold_s']:>8} {r['cold_calls']:>6} "
                  f"{r['adopt_s']:>8} {r['adopt_changes']:>9}")
        sw = bench_switch(stack, work, peers, args.peers)
        results["switch"] = sw
        print(f"\nlive switch, {sw['peers']} peers (control plane: new cluster state -> VPP programmed):")
        for k in ("clear_to_ipsec", "rekey_add_inbound", "rekey_switch_outbound", "rekey_drop_old",
                  "ipsec_to_wireguard"):
            print(f"  {k:<24} {sw[k + '_s']:>7.3f} s  {sw[k + '_calls']:>6} calls")
    if args.data_plane:
        results["data_plane"] = data_plane(args.seconds)
    else:
        results["data_plane"] = {"skipped": "run with --data-plane (root, VPPAGENT_VPP_BIN)"}
    print(f"\ndata plane: {json.dumps(results['data_plane'], indent=2)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "encryption_bench.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out / 'encryption_bench.json'}")


if __name__ == "__main__":
    main()
