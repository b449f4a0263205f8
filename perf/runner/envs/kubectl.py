"""A real cluster through kubectl: an iperf3 server and a client pod pinned to two nodes with nodeName.

Owns rendering the manifests (``render``, pure, tested) and running them
(``kubectl_env``): apply, wait until both pods are Ready, read the server's
pod IP (or the Service's ClusterIP), exec iperf3 in the pods, delete the
namespace afterwards. VPP clocks and CPU on a cluster are read on the nodes
by the operator (see perf/README.md); this environment reports them as not
measured.

Scenario keys under ``kubectl``: ``client_node``, ``server_node`` (default:
the same node twice is refused only when ``two_nodes: true``), ``namespace``
(default vppagent-perf), ``image`` (an image with iperf3), ``host_network``
(pods in the nodes' own netns: the cluster's kernel baseline). A memif
``pod_interface`` adds the memif annotation.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from perf.runner.envs.common import EnvError, EnvUnavailable, Setup
from perf.runner.scenario import Scenario, ScenarioError

DEFAULT_IMAGE = "docker.io/networkstatic/iperf3:latest"
PORT = 5201


def _settings(sc: Scenario) -> dict[str, Any]:
    kc = dict(sc.kubectl)
    unknown = set(kc) - {"client_node", "server_node", "namespace", "image", "two_nodes", "host_network"}
    if unknown:
        raise ScenarioError(sc.source or sc.name, f"kubectl.{sorted(unknown)[0]}", "unknown key")
    for key in ("client_node", "server_node"):
        if not isinstance(kc.get(key), str) or not kc[key]:
            raise ScenarioError(sc.source or sc.name, f"kubectl.{key}", "missing: the node name to pin the pod to")
    if not isinstance(kc.get("host_network", False), bool):
        raise ScenarioError(sc.source or sc.name, "kubectl.host_network", "expected a boolean")
    if kc.get("two_nodes", True) and kc["client_node"] == kc["server_node"]:
        raise ScenarioError(sc.source or sc.name, "kubectl.server_node",
                            "same node as client_node (set two_nodes: false for a one-node run)")
    return {"namespace": kc.get("namespace", "vppagent-perf"), "image": kc.get("image", DEFAULT_IMAGE), **kc}


def render(sc: Scenario) -> list[dict[str, Any]]:
    """The objects a kubectl run applies: namespace, server and client pods (nodeName-pinned),
    a ClusterIP Service for ``target: service`` and a NetworkPolicy for ``policy``."""
    s = _settings(sc)
    ns = s["namespace"]
    annotations = {"vppagent.io/memif": "true"} if sc.pod_interface == "memif" else {}

    def pod(role: str, node: str, command: list[str]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"perf-{role}", "namespace": ns, "labels": {"app": f"perf-{role}"},
                             "annotations": annotations},
                "spec": {"nodeName": node, "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                         # host_network: the cluster's kernel baseline (node to node, no pod data plane)
                         **({"hostNetwork": True} if s.get("host_network") else {}),
                         "containers": [{"name": "iperf3", "image": s["image"], "command": command,
                                         "ports": [{"containerPort": PORT, "protocol": "TCP"},
                                                   {"containerPort": PORT, "protocol": "UDP"}]}]}}

    objs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        pod("server", s["server_node"], ["sleep", "infinity"]),
        pod("client", s["client_node"], ["sleep", "infinity"]),
    ]
    if sc.target == "service" or sc.services:
        objs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "perf-server", "namespace": ns},
                     "spec": {"selector": {"app": "perf-server"},
                              "ports": [{"name": "iperf", "protocol": "TCP", "port": PORT, "targetPort": PORT},
                                        {"name": "iperf-udp", "protocol": "UDP", "port": PORT, "targetPort": PORT}]}})
    if sc.policy:
        objs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": "perf-allow-client", "namespace": ns},
                     "spec": {"podSelector": {"matchLabels": {"app": "perf-server"}},
                              "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "perf-client"}}}],
                                           "ports": [{"protocol": "TCP", "port": PORT},
                                                     {"protocol": "UDP", "port": PORT}]}]}})
    return objs


def render_yaml(sc: Scenario) -> str:
    return yaml.safe_dump_all(render(sc), sort_keys=False)


def _kubectl(*args: str, stdin: str | None = None, timeout: float = 120) -> str:
    r = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise EnvError(f"kubectl {' '.join(args)}: {r.stderr.strip()[-400:]}")
    return r.stdout


@contextmanager
def kubectl_env(sc: Scenario) -> Iterator[Setup]:
    if shutil.which("kubectl") is None:
        raise EnvUnavailable("kubectl is not installed (the kubectl environment drives a real cluster)")
    s = _settings(sc)
    ns = s["namespace"]
    probe = subprocess.run(["kubectl", "get", "--raw", "/version", "--request-timeout=5s"], capture_output=True,
                           text=True, timeout=30)
    if probe.returncode != 0:
        raise EnvUnavailable(f"kubectl reaches no cluster: {(probe.stderr.strip().splitlines() or [''])[-1][:200]}")
    _kubectl("apply", "-f", "-", stdin=render_yaml(sc))
    try:
        _kubectl("-n", ns, "wait", "--for=condition=Ready", "pod/perf-server", "pod/perf-client", "--timeout=180s",
                 timeout=200)
        server = json.loads(_kubectl("-n", ns, "get", "pod", "perf-server", "-o", "json"))
        server_ip = server["status"]["podIP"]
        target = server_ip
        if sc.target == "service":
            target = json.loads(_kubectl("-n", ns, "get", "svc", "perf-server", "-o", "json"))["spec"]["clusterIP"]
        time.sleep(2)  # the agents program the policy and service
        exec_in = ["kubectl", "-n", ns, "exec"]

        def server_rx() -> int | None:
            try:
                return int(_kubectl("-n", ns, "exec", "perf-server", "--", "cat",
                                    "/sys/class/net/eth0/statistics/rx_packets").strip())
            except (EnvError, ValueError):
                return None

        # Both pods idle; the runner starts a one-shot iperf3 server in perf-server per load run.
        yield Setup(client_prefix=exec_in + ["perf-client", "--"], server_prefix=exec_in + ["perf-server", "--"],
                    target_ip=target, server_ip=server_ip, server_rx_packets=server_rx,
                    notes={"cluster": True, "client_node": s["client_node"], "server_node": s["server_node"],
                           "vpp_runtime_and_cpu": "not measured by the runner on a cluster (see perf/README.md)"})
    finally:
        subprocess.run(["kubectl", "delete", "namespace", ns, "--wait=false"], capture_output=True, timeout=60)
