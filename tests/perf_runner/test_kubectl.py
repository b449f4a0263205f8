"""The kubectl environment's manifests (rendered only: no cluster here)."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from perf.runner.envs import EnvUnavailable
from perf.runner.envs.kubectl import kubectl_env, render
from perf.runner.scenario import ScenarioError, find

REPO = Path(__file__).resolve().parents[2]


def _by_kind(objs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for o in objs:
        out.setdefault(o["kind"], []).append(o)
    return out


def test_pods_are_pinned_to_the_two_nodes() -> None:
    objs = _by_kind(render(find("cluster-pod-to-pod")))
    pods = {p["metadata"]["name"]: p for p in objs["Pod"]}
    assert pods["perf-server"]["spec"]["nodeName"] == "worker-2"
    assert pods["perf-client"]["spec"]["nodeName"] == "worker-1"
    assert all("hostNetwork" not in p["spec"] for p in pods.values())
    assert {p["metadata"]["namespace"] for p in pods.values()} == {"vppagent-perf"}
    assert "Service" not in objs and "NetworkPolicy" not in objs


def test_service_and_policy_scenario_adds_both() -> None:
    objs = _by_kind(render(find("cluster-service")))
    svc = objs["Service"][0]
    assert svc["spec"]["selector"] == {"app": "perf-server"}
    assert {(p["protocol"], p["port"]) for p in svc["spec"]["ports"]} == {("TCP", 5201), ("UDP", 5201)}
    pol = objs["NetworkPolicy"][0]["spec"]
    assert pol["podSelector"] == {"matchLabels": {"app": "perf-server"}}
    assert pol["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"app": "perf-client"}}}]


def test_kernel_baseline_on_a_cluster_uses_host_network_and_memif_adds_the_annotation() -> None:
    pods = _by_kind(render(find("cluster-kernel")))["Pod"]
    assert all(p["spec"]["hostNetwork"] is True for p in pods)
    memif = dataclasses.replace(find("cluster-pod-to-pod"), pod_interface="memif")
    assert all(p["metadata"]["annotations"] == {"vppagent.io/memif": "true"} for p in _by_kind(render(memif))["Pod"])


def test_bad_kubectl_settings_name_the_key() -> None:
    sc = find("cluster-pod-to-pod")
    with pytest.raises(ScenarioError) as e:
        render(dataclasses.replace(sc, kubectl={"server_node": "b"}))
    assert e.value.key == "kubectl.client_node"
    with pytest.raises(ScenarioError, match="same node"):
        render(dataclasses.replace(sc, kubectl={"client_node": "a", "server_node": "a"}))
    with pytest.raises(ScenarioError) as e:
        render(dataclasses.replace(sc, kubectl={"client_node": "a", "server_node": "b", "nodes": 2}))
    assert e.value.key == "kubectl.nodes"


def test_cli_renders_yaml() -> None:
    r = subprocess.run([sys.executable, "-m", "perf", "render", "cluster-service"], capture_output=True, text=True,
                       cwd=REPO, timeout=30)
    assert r.returncode == 0, r.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(r.stdout)]
    assert kinds == ["Namespace", "Pod", "Pod", "Service", "NetworkPolicy"]


def test_without_kubectl_the_env_is_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvUnavailable, match="kubectl is not installed"):
        with kubectl_env(find("cluster-pod-to-pod")):
            pass


def test_kubectl_without_a_cluster_is_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "kubectl"
    fake.write_text("#!/bin/sh\necho 'The connection to the server localhost:8080 was refused' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(EnvUnavailable, match="kubectl reaches no cluster: The connection to the server"):
        with kubectl_env(find("cluster-pod-to-pod")):
            pass
