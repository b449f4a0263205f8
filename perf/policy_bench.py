"""NetworkPolicy compiler at scale: full compile, and the cost of one change.

    python -m perf.policy_bench [--policies 1000] [--pods 5000] [--namespaces 50]
                                [--nodes 45] [--repeat 200] [--out perf/results]

The workload is a synthetic cluster fed straight to ``PolicyCompiler`` as model
objects (what the sources deliver): ``--namespaces`` namespaces labelled
team/env, ``--pods`` dual-stack pods spread over them and over ``--nodes``
nodes (this agent's node gets pods/nodes of them), each with an ``app`` label
and a named port ``http``; ``--policies`` policies spread over the
namespaces, each selecting one app and mixing the peer forms Kubernetes
users write (podSelector, namespaceSelector AND podSelector, namespaceSelector
alone, ipBlock with except) with numeric, ranged (endPort) and named ports,
a third of them with egress rules too.

Measured (pure Python, one process, wall clock via perf_counter):

- compile: namespaces + pods + policies from empty, and the policies alone;
  and the other arrival order (policies before pods), which must give the
  same snapshot;
- deltas: one remote pod's label change (set members only), one namespace's
  label change (its pods move in or out of namespace-selected sets), one
  local pod's label change (its PodPolicy, and the sets it names, change),
  one policy update; each repeated ``--repeat`` times, median and p99
  reported. The pod and namespace changes are chosen to reach sets that are
  live on this node, and the member operations they yield are reported.

Prints a table; writes ``policy_compile.json``. The compiler has no VPP side,
so there is no backend to choose; programming the plugin is measured elsewhere.
"""
from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import os
import platform
import statistics
import time
from pathlib import Path

from vppagent.model.k8s import (  # noqa: E402
    ContainerPort,
    FrozenMap,
    Namespace,
    Pod,
    Protocol,
    networkpolicy_from_api,
)
from vppagent.policy.compiler import PolicyCompiler  # noqa: E402
from vppagent.policy.ir import AddrPortSet, AddrSet  # noqa: E402

APPS = 20
TEAMS = 5
LOCAL = "node-0"


def namespaces(n: int) -> list[Namespace]:
    return [Namespace(f"ns{i}", labels=FrozenMap({"kubernetes.io/metadata.name": f"ns{i}",
                                                  "team": f"t{i % TEAMS}", "env": "prod" if i % 2 else "dev"}))
            for i in range(n)]


def pod(i: int, n_ns: int, n_nodes: int, app: int | None = None, version: int = 0) -> Pod:
    ns = i % n_ns
    a = (i // n_ns) % APPS if app is None else app
    v4 = ipaddress.ip_address(0x0AF40000 + i + 1)  # 10.244.0.0/16
    v6 = ipaddress.ip_address(f"fd00:244::{i + 1:x}")
    return Pod(f"ns{ns}", f"pod{i}", node_name=f"node-{i % n_nodes}", ips=(v4, v6),
               labels=FrozenMap({"app": f"a{a}", "v": str(version)}),
               ports=(ContainerPort("http", Protocol.TCP, 8000 + a),), phase="Running")


def policy(j: int, n_ns: int, version: int = 0) -> object:
    ns = j % n_ns
    app = (j // n_ns) % APPS
    peers = [
        {"podSelector": {"matchLabels": {"app": f"a{(app + 1) % APPS}"}}},
        {"namespaceSelector": {"matchLabels": {"team": f"t{j % TEAMS}"}},
         "podSelector": {"matchExpressions": [{"key": "app", "operator": "In",
                                               "values": [f"a{(app + 2) % APPS}", f"a{(app + 3) % APPS}"]}]}},
    ]
    if j % 4 == 0:
        peers.append({"namespaceSelector": {"matchLabels": {"env": "prod"}}})
    if j % 5 == 0:
        peers.append({"ipBlock": {"cidr": f"172.{16 + j % 16}.0.0/16", "except": [f"172.{16 + j % 16}.1.0/24"]}})
    ports = [{"port": 80 + version}, {"port": "http"}, {"port": 30000, "endPort": 30100, "protocol": "UDP"}]
    spec: dict = {"podSelector": {"matchLabels": {"app": f"a{app}"}},
                  "ingress": [{"from": peers, "ports": ports}, {"from": [{"podSelector": {}}], "ports": [{"port": 9090}]}]}
    if j % 3 == 0:
        spec["policyTypes"] = ["Ingress", "Egress"]
        spec["egress"] = [{"to": [{"podSelector": {"matchLabels": {"app": f"a{(app + 4) % APPS}"}}}],
                           "ports": [{"port": "http"}]},
                          {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
                           "ports": [{"port": 443}]}]
    return networkpolicy_from_api({"metadata": {"namespace": f"ns{ns}", "name": f"np{j}"}, "spec": spec})


def timed(fn, repeat: int) -> dict:
    samples = []
    for k in range(repeat):
        t = time.perf_counter()
        fn(k)
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort()
    return {"median_us": round(statistics.median(samples), 1),
            "p99_us": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 1),
            "n": repeat}


def run(args: argparse.Namespace) -> dict:
    nss = namespaces(args.namespaces)
    pods = [pod(i, args.namespaces, args.nodes) for i in range(args.pods)]
    pols = [policy(j, args.namespaces) for j in range(args.policies)]

    gc.collect()
    c = PolicyCompiler(LOCAL)
    t0 = time.perf_counter()
    for ns in nss:
        c.update_namespace(ns)
    for p in pods:
        c.update_pod(p)
    t1 = time.perf_counter()
    created = 0
    problems = 0
    for p in pols:
        d = c.update_policy(p)
        created += len(d.sets_created)
        problems += len(d.problems)
    t2 = time.perf_counter()
    snap = c.snapshot()
    t3 = time.perf_counter()

    # The other arrival order (policies listed before pods), in a fresh compiler.
    c2 = PolicyCompiler(LOCAL)
    t4 = time.perf_counter()
    for ns in nss:
        c2.update_namespace(ns)
    for p in pols:
        c2.update_policy(p)
    for p in pods:
        c2.update_pod(p)
    t5 = time.perf_counter()
    assert c2.snapshot() == snap, "arrival order changed the compiled state"
    del c2

    members = sum(len(s.members) for s in snap.sets.values() if isinstance(s, (AddrSet, AddrPortSet)))
    rules = sum(len(d.rules) for pp in snap.pods.values() for d in (pp.ingress, pp.egress) if d)
    local = sum(1 for p in pods if p.node_name == LOCAL)

    # The changes measured all reach live sets (sets named by this node's pods'
    # rules): a local pod of namespace X, app A, is selected by policy
    # j = X + namespaces * A, whose peers are app A+1 in X, and apps A+2/A+3 in
    # namespaces with team t(j % 5).
    target = next(p for p in pods if p.node_name == LOCAL)
    t_i = int(target.name[3:])
    x, a = t_i % args.namespaces, (t_i // args.namespaces) % APPS
    j = x + args.namespaces * a
    remote = next(p for p in pods if p.node_name != LOCAL and p.namespace == f"ns{x}")
    remote_i = int(remote.name[3:])
    member_changes = []

    def remote_change(k: int) -> None:
        app = (a + 1) % APPS if k % 2 == 0 else (a + 10) % APPS
        d = c.update_pod(pod(remote_i, args.namespaces, args.nodes, app=app))
        member_changes.append(sum(len(x.added) + len(x.removed) for x in d.members))
        assert not d.pods and not d.sets_created

    ns_changes = []
    other_ns = nss[(x + 1) % args.namespaces]

    def ns_change(k: int) -> None:
        labels = dict(other_ns.labels)
        labels["team"] = f"t{j % TEAMS}" if k % 2 == 0 else "t-other"
        d = c.update_namespace(Namespace(other_ns.name, labels=FrozenMap(labels)))
        ns_changes.append(sum(len(x.added) + len(x.removed) for x in d.members))

    local_changes = []

    def local_change(k: int) -> None:
        d = c.update_pod(pod(t_i, args.namespaces, args.nodes, app=a if k % 2 else (a + 7) % APPS))
        local_changes.append(len(d.pods))

    def policy_change(k: int) -> None:
        c.update_policy(policy(7, args.namespaces, version=k % 2 + 1))

    result = {
        "workload": {"policies": args.policies, "pods": args.pods, "namespaces": args.namespaces,
                     "nodes": args.nodes, "local_pods": local, "ips_per_pod": 2},
        "compile": {
            "namespaces_and_pods_s": round(t1 - t0, 3),
            "policies_s": round(t2 - t1, 3),
            "total_s": round(t2 - t0, 3),
            "snapshot_s": round(t3 - t2, 3),
            "total_policies_first_s": round(t5 - t4, 3),
            "sets_tracked": c.stats()["sets_tracked"],
            "sets_live_on_node": len(snap.sets),
            "live_set_members": members,
            "isolated_local_pods": len(snap.pods),
            "rules_on_local_pods": rules,
            "problems": problems,
        },
        "delta": {
            "remote_pod_label_change": timed(remote_change, args.repeat),
            "namespace_label_change": timed(ns_change, args.repeat),
            "local_pod_label_change": timed(local_change, args.repeat),
            "policy_update": timed(policy_change, args.repeat),
        },
        "delta_sizes": {
            "remote_pod_label_change_member_ops": max(member_changes),
            "local_pod_label_change_pods_changed": max(local_changes),
            "namespace_label_change_member_ops": max(ns_changes),
        },
    }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policies", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=5000)
    ap.add_argument("--namespaces", type=int, default=50)
    ap.add_argument("--nodes", type=int, default=45)
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args()
    res = run(args)
    doc = {"benchmark": "policy_compile", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "kernel": platform.release(), "load_avg_1m": round(os.getloadavg()[0], 2)},
           **res}
    w, cpl = res["workload"], res["compile"]
    print(f"workload: {w['policies']} policies x {w['pods']} pods ({w['namespaces']} namespaces, "
          f"{w['local_pods']} local pods, 2 IPs each)")
    print(f"compile: pods+namespaces {cpl['namespaces_and_pods_s']} s, policies {cpl['policies_s']} s, "
          f"total {cpl['total_s']} s (policies first: {cpl['total_policies_first_s']} s); {cpl['sets_tracked']} sets tracked, "
          f"{cpl['sets_live_on_node']} live on this node with {cpl['live_set_members']} members, "
          f"{cpl['isolated_local_pods']} isolated local pods, {cpl['rules_on_local_pods']} rules")
    for k, v in res["delta"].items():
        print(f"delta {k:28s} median {v['median_us']:>9} us  p99 {v['p99_us']:>9} us  (n={v['n']})")
    print(f"delta sizes: {res['delta_sizes']}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "policy_compile.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out / 'policy_compile.json'}")


if __name__ == "__main__":
    main()
