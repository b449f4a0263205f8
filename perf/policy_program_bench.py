"""Network policy programming: kpol vs the ACL fallback, full and incremental.

    python -m perf.policy_program_bench [--namespaces 20] [--pods 2000] [--local 50]
                                        [--changes 50] [--out perf/results]

Workload: ``--namespaces`` namespaces, half labelled ``team=web``;
``--pods`` remote pods spread over them; ``--local`` pods on this node in
namespace ``app``, each with a pod interface (a tagged loopback standing in
for the af_packet interface) and selected by one policy allowing TCP 80 from
the ``team=web`` namespaces plus an ipBlock with an except. Model objects go
through the agent's ``ClusterState``, the real ``PolicyFeature`` and the real
reconciler.

Measured per backend (kpol; ACL fallback): full programming (desired state +
converge: seconds, VPP calls, ACL rules); then ``--changes`` times a
namespace joining the selected set (label flip) and a remote pod appearing in
a selected namespace: seconds from the cluster event to VPP's last reply,
and the VPP calls by message; for kpol also the namespace join through the
agent's incremental path (``desired_delta``).

Backends: the VPP API emulator (in process) always; a real VPP when
``VPPAGENT_VPP_BIN`` is set (kpol only when ``VPPAGENT_KPOL_PLUGIN_DIR``
holds kpol_plugin.so). Writes ``policy_program.json``.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

from startup.vpp_process import VppPaths, VppProcess, render_startup_conf  # noqa: E402
from testbed.emulator import Emulator  # noqa: E402
from testbed.emulator.apidefs import load_definitions as emu_definitions  # noqa: E402
from vppagent.model.cluster_state import ClusterState  # noqa: E402
from vppagent.model.k8s import FrozenMap, Namespace, Pod, networkpolicy_from_api  # noqa: E402
from vppagent.policy.feature import PolicyFeature  # noqa: E402
from vppagent.kinds import default_is_retriable  # noqa: E402
from vppagent.reconcile import Found, Intent, Reconciler  # noqa: E402
from vppagent.sources import Upsert  # noqa: E402
from vppagent.vpp import acl, interfaces  # noqa: E402
from vppagent.vpp.api_defs import PLUGIN_API_DIR, load_definitions  # noqa: E402
from vppagent.vpp.client import VppClient  # noqa: E402

ME = "node-1"
TAG = "bench-pod:"


class LoopbackPods:
    """``pod-interface`` as tagged loopbacks: the policy side only needs an sw_if_index."""

    kind = "pod-interface"
    retrieve_after: tuple[str, ...] = ()

    def key(self, v: str) -> str:
        return v

    def dependencies(self, v: str) -> list:
        return []

    def create(self, vpp: VppClient, v: str, r: Any) -> int:
        sw = interfaces.create_loopback(vpp)
        interfaces.set_tag(vpp, sw, TAG + v)
        return sw

    def can_update(self, o: str, n: str) -> bool:
        return False

    def update(self, *a: Any) -> Any:
        raise NotImplementedError

    def delete(self, vpp: VppClient, v: str, h: int, r: Any) -> None:
        interfaces.delete_loopback(vpp, h)

    def retrieve(self, vpp: VppClient, r: Any) -> list:
        return [Found(i.tag[len(TAG):], i.sw_if_index) for i in interfaces.dump(vpp) if i.tag.startswith(TAG)]

    def is_retriable(self, e: Exception) -> bool:
        return default_is_retriable(e)


class _Att:
    def __init__(self, ns: str, name: str, cid: str):
        self.pod_namespace, self.pod_name, self.container_id, self.ifname = ns, name, cid, "eth0"


class _Pods:
    def __init__(self) -> None:
        self.atts: list[_Att] = []

    def attachments(self) -> list[_Att]:
        return self.atts


def _ip(i: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(0x0AF40000 + 10 + i)


def run(vpp: VppClient, args: argparse.Namespace) -> dict:
    cluster = ClusterState()
    pods = _Pods()
    feature = PolicyFeature(ME, pods)
    feature.bind_vpp(vpp)
    rec = Reconciler(vpp)
    rec.register(LoopbackPods())
    for d in feature.descriptors():
        rec.register(d)

    def put(obj: Any) -> None:
        cluster.apply(Upsert(obj, "bench"))

    def converge() -> None:
        intents, _ = feature.desired(cluster)
        rec.set_desired([Intent("pod-interface", f"{a.container_id[:32]}/eth0") for a in pods.atts] + intents)
        rec.converge()
        if rec.failures:
            raise RuntimeError(f"failures: {dict(rec.failures)}")

    put(Namespace("app", labels=FrozenMap({"kubernetes.io/metadata.name": "app"})))
    for n in range(args.namespaces):
        labels = {"kubernetes.io/metadata.name": f"ns{n}", **({"team": "web"} if n % 2 == 0 else {})}
        put(Namespace(f"ns{n}", labels=FrozenMap(labels)))
    for i in range(args.pods):
        put(Pod(f"ns{i % args.namespaces}", f"p{i}", node_name="node-2", ips=(_ip(i),), phase="Running"))
    for i in range(args.local):
        put(Pod("app", f"local{i}", node_name=ME, ips=(_ip(100000 + i),), labels=FrozenMap({"app": "server"}),
                phase="Running"))
        pods.atts.append(_Att("app", f"local{i}", f"{i:032x}"))
    put(networkpolicy_from_api({
        "metadata": {"namespace": "app", "name": "allow-web"},
        "spec": {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "web"}}},
                                       {"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.1.0/24"]}}],
                              "ports": [{"protocol": "TCP", "port": 80}]}]}}))
    c0, t0 = vpp.calls.copy(), time.perf_counter()
    converge()
    full = {"seconds": round(time.perf_counter() - t0, 4), "calls": sum((vpp.calls - c0).values()),
            "backend": feature.backend()}
    if full["backend"] == "acl":
        full["acl_rules"] = sum(len(a.rules) for a in acl.dump_acls(vpp))

    def measure(change, settle=converge) -> dict:
        times, calls = [], Counter()
        for k in range(args.changes):
            before = vpp.calls.copy()
            t = time.perf_counter()
            change(k)
            settle()
            times.append(time.perf_counter() - t)
            calls += vpp.calls - before
        times.sort()
        return {"p50_ms": round(1000 * statistics.median(times), 3),
                "p99_ms": round(1000 * times[min(len(times) - 1, int(0.99 * len(times)))], 3),
                "calls_per_change": {m: round(n / args.changes, 2) for m, n in calls.items()}}

    def flip(k: int) -> None:
        n = 2 * (k % (args.namespaces // 2)) + 1  # an odd (unselected) namespace joins, then leaves
        joined = (k // (args.namespaces // 2)) % 2 == 0
        labels = {"kubernetes.io/metadata.name": f"ns{n}", **({"team": "web"} if joined else {})}
        put(Namespace(f"ns{n}", labels=FrozenMap(labels)))

    def new_pod(k: int) -> None:
        put(Pod("ns0", f"new{k}", node_name="node-2", ips=(_ip(200000 + k),), phase="Running"))

    out = {"full": full, "namespace_join": measure(flip), "pod_added": measure(new_pod)}
    if full["backend"] == "kpol":
        # The agent's incremental path for Namespace changes (desired_delta + update_desired).
        def flip_delta(k: int) -> None:
            flip(k)
            n = 2 * (k % (args.namespaces // 2)) + 1
            delta = feature.desired_delta(cluster, {Namespace(f"ns{n}").key})
            rec.update_desired(delta.removed, delta.added)

        out["namespace_join_delta_path"] = measure(flip_delta, rec.converge)
    return out


def _emulated(tmp: Path, with_kpol: bool, api: str) -> tuple[Emulator, VppClient]:
    d = tmp / ("ek" if with_kpol else "es")
    d.mkdir()
    defs = Path(api)
    if with_kpol:
        defs = d / "api"
        shutil.copytree(api, defs, copy_function=os.symlink)
        (defs / "ours").mkdir()
        for f in PLUGIN_API_DIR.glob("*.api.json"):
            shutil.copy(f, defs / "ours" / f.name)
    emu = Emulator(d / "api.sock", definitions=emu_definitions(defs)).start()
    return emu, VppClient(str(d / "api.sock"), definitions=load_definitions(api), required={}).connect()


def _real(tmp: Path, with_kpol: bool, api: str) -> tuple[VppProcess, VppClient]:
    workdir = tmp / ("vk" if with_kpol else "vs")
    conf = render_startup_conf(VppPaths(workdir))
    if with_kpol:
        conf = conf.replace("plugins {\n", "plugins {\n  path /opt/vpp/lib/x86_64-linux-gnu/vpp_plugins:"
                            f"{os.environ['VPPAGENT_KPOL_PLUGIN_DIR']}\n", 1)
    proc = VppProcess(os.environ["VPPAGENT_VPP_BIN"], workdir=workdir, config=conf, die_with_parent=True).start()
    return proc, VppClient(str(proc.paths.api_socket), definitions=load_definitions(api), required={}).connect()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--namespaces", type=int, default=20)
    ap.add_argument("--pods", type=int, default=2000)
    ap.add_argument("--local", type=int, default=50)
    ap.add_argument("--changes", type=int, default=50)
    ap.add_argument("--out", default=str(ROOT / "perf" / "results"))
    args = ap.parse_args()
    api = os.environ.get("VPPAGENT_API_DIR") or str(ROOT.parent / "shared" / "vpp-api" / "v26.06")
    results: dict[str, Any] = {"workload": vars(args) | {"out": None}, "machine": platform.platform(),
                               "cpus": os.cpu_count()}
    tmp = Path(tempfile.mkdtemp(prefix="vpa-polb-"))
    try:
        for with_kpol in (True, False):
            emu, vpp = _emulated(tmp, with_kpol, api)
            try:
                results[f"emulator/{'kpol' if with_kpol else 'acl'}"] = run(vpp, args)
            finally:
                vpp.close()
                emu.stop()
        if os.environ.get("VPPAGENT_VPP_BIN"):
            kinds = [True, False] if os.environ.get("VPPAGENT_KPOL_PLUGIN_DIR") else [False]
            for with_kpol in kinds:
                proc, vpp = _real(tmp, with_kpol, api)
                try:
                    results[f"real_vpp/{'kpol' if with_kpol else 'acl'}"] = run(vpp, args)
                finally:
                    vpp.close()
                    proc.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "policy_program.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
