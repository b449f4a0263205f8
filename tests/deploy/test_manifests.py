"""deploy/*.yaml loaded into the ``kubernetes`` client's models, and their cross-references:
volumes and mounts, the ConfigMap and the env, ports and probes, the ServiceAccount and RBAC.
Also: the ConfigMap is what scripts/gen_configmap.py writes, and its values load with config.load."""
from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from vppagent import config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
MODELS = {("v1", "ServiceAccount"): "V1ServiceAccount", ("v1", "ConfigMap"): "V1ConfigMap",
          ("apps/v1", "DaemonSet"): "V1DaemonSet",
          ("rbac.authorization.k8s.io/v1", "ClusterRole"): "V1ClusterRole",
          ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "V1ClusterRoleBinding"}


def _strict(model: Any, raw: Any, path: str) -> None:
    """Every field of ``raw`` maps to an attribute of the model (the client drops unknown ones)."""
    if isinstance(raw, dict) and hasattr(model, "attribute_map"):
        known = {v: k for k, v in model.attribute_map.items()}
        for k, v in raw.items():
            assert k in known, f"{path}.{k}: unknown field for {type(model).__name__}"
            _strict(getattr(model, known[k]), v, f"{path}.{k}")
    elif isinstance(raw, list) and isinstance(model, list):
        for i, (m, r) in enumerate(zip(model, raw)):
            _strict(m, r, f"{path}[{i}]")


def load_all() -> dict[tuple[str, str], Any]:
    api = ApiClient()
    out: dict[tuple[str, str], Any] = {}
    for f in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc is None:
                continue
            cls = MODELS.get((doc["apiVersion"], doc["kind"]))
            assert cls, f"{f.name}: unexpected {doc['apiVersion']} {doc['kind']}"
            obj = api._ApiClient__deserialize(doc, cls)
            _strict(obj, doc, f"{f.name}:{doc['kind']}")
            key = (doc["kind"], obj.metadata.name)
            assert key not in out, f"{key} defined twice"
            out[key] = obj
    return out


@pytest.fixture(scope="module")
def objs() -> dict[tuple[str, str], Any]:
    return load_all()


@pytest.fixture(scope="module")
def ds(objs):
    return objs[("DaemonSet", "vppagent")]


def container(ds, name: str):
    pod = ds.spec.template.spec
    return next(c for c in (pod.containers or []) + (pod.init_containers or []) if c.name == name)


def test_the_expected_objects_exist(objs) -> None:
    assert set(objs) == {("ServiceAccount", "vppagent"), ("ClusterRole", "vppagent"),
                         ("ClusterRoleBinding", "vppagent"), ("ConfigMap", "vppagent-config"),
                         ("DaemonSet", "vppagent")}
    namespaced = [o for (kind, _), o in objs.items() if kind in ("ServiceAccount", "ConfigMap", "DaemonSet")]
    assert {o.metadata.namespace for o in namespaced} == {"kube-system"}


def test_daemonset_containers_and_scheduling(ds) -> None:
    pod = ds.spec.template.spec
    assert [c.name for c in pod.containers] == ["vpp", "agent"]
    assert [c.name for c in pod.init_containers] == ["install-cni"]
    assert ds.spec.selector.match_labels.items() <= ds.spec.template.metadata.labels.items()
    assert pod.host_network and pod.priority_class_name == "system-node-critical"
    assert any(t.operator == "Exists" and not t.key and not t.effect for t in pod.tolerations), \
        "tolerate every taint: the CNI must run on every node"
    assert pod.node_selector == {"kubernetes.io/os": "linux"}
    vpp = container(ds, "vpp")
    assert vpp.resources.requests["hugepages-2Mi"] == vpp.resources.limits["hugepages-2Mi"]
    for c in pod.containers:
        assert c.resources.requests.get("cpu") and c.resources.requests.get("memory") and c.resources.limits["memory"]
        assert not c.security_context.privileged, f"{c.name}: capabilities are listed, not privileged"
        assert c.security_context.capabilities.drop == ["ALL"]
    # the commands are the image's entry points (see Dockerfile)
    assert container(ds, "agent").command == ["/opt/vppagent/bin/vppagent"] and container(ds, "agent").args == ["run"]
    assert vpp.command == ["/opt/vppagent/bin/python", "-m", "startup"] and vpp.args[-1] == "run"
    assert "vppagent-cni install" in " ".join(container(ds, "install-cni").command)


def test_capabilities_are_justified_in_comments(ds) -> None:
    text = (DEPLOY / "daemonset.yaml").read_text()
    header = text.split("apiVersion:")[0]
    for c in ds.spec.template.spec.containers:
        for cap in c.security_context.capabilities.add or []:
            assert cap in header, f"{c.name}: capability {cap} not justified in the header comment"


def test_volumes_and_mounts_match(ds) -> None:
    pod = ds.spec.template.spec
    volumes = {v.name: v for v in pod.volumes}
    mounted = set()
    for c in pod.containers + pod.init_containers:
        paths = [m.mount_path for m in c.volume_mounts]
        assert len(paths) == len(set(paths)), f"{c.name}: a path mounted twice"
        for m in c.volume_mounts:
            assert m.name in volumes, f"{c.name} mounts undefined volume {m.name}"
            mounted.add(m.name)
    assert set(volumes) == mounted, f"volumes never mounted: {set(volumes) - mounted}"
    host = {v.host_path.path for v in volumes.values() if v.host_path}
    assert {"/var/run/vpp", "/var/lib/cni", "/etc/cni/net.d", "/opt/cni/bin", "/var/lib/vppagent",
            "/var/lib/vppagent/keys", "/var/run/vppagent"} <= host
    assert volumes["hugepages"].empty_dir.medium == "HugePages-2Mi"
    # both containers see VPP's sockets at the path the agent's configuration names
    cm_sock = Path(config.KEYS[[k.name for k in config.KEYS].index("vpp_socket")].default).parent
    for name in ("vpp", "agent"):
        assert any(m.name == "vpp-run" and Path(m.mount_path) == cm_sock for m in container(ds, name).volume_mounts)
    # ... and VPP creates them there: startup runs VPP in <--state-dir>/vpp (startup/manager.py)
    vpp = container(ds, "vpp")
    from startup.manager import BringUpConfig

    workdir = BringUpConfig(state_dir=Path(vpp.args[vpp.args.index("--state-dir") + 1])).vpp_workdir
    assert any(m.name == "vpp-run" and Path(m.mount_path) == workdir for m in vpp.volume_mounts)
    # the agent's sockets live where the CNI plugin (on the host) looks for them
    agent_run = next(m for m in container(ds, "agent").volume_mounts if m.name == "agent-run")
    cni_default = next(k.default for k in config.KEYS if k.name == "cni_socket")
    assert Path(cni_default).parent == Path(agent_run.mount_path) == Path(volumes["agent-run"].host_path.path)
    assert any(m.name == "netns" and m.mount_propagation == "HostToContainer"
               for m in container(ds, "agent").volume_mounts)


def test_configmap_and_env(objs, ds) -> None:
    cm = objs[("ConfigMap", "vppagent-config")]
    agent = container(ds, "agent")
    (ref,) = agent.env_from
    assert ref.config_map_ref.name == cm.metadata.name and not ref.config_map_ref.optional
    known = {k.env for k in config.KEYS}
    assert set(cm.data) <= known, f"ConfigMap keys the agent does not read: {set(cm.data) - known}"
    env = {e.name: e for e in agent.env}
    assert env["VPPAGENT_NODE_NAME"].value_from.field_ref.field_path == "spec.nodeName"
    for e in agent.env:
        assert e.name in known, f"env {e.name} is not a configuration key"
        ckr = e.value_from.config_map_key_ref if e.value_from else None
        if ckr is not None:
            assert ckr.name == cm.metadata.name and ckr.key in cm.data
    # every key: in the ConfigMap, or set by the DaemonSet
    assert known == set(cm.data) | set(env), f"keys set nowhere: {known - set(cm.data) - set(env)}"


def test_configmap_is_generated_from_config_keys() -> None:
    spec = importlib.util.spec_from_file_location("gen_configmap", REPO / "scripts" / "gen_configmap.py")
    assert spec is not None and spec.loader is not None
    gen_configmap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_configmap)
    current = (DEPLOY / "configmap.yaml").read_text()
    assert current == gen_configmap.render(), "deploy/configmap.yaml is out of date: run scripts/gen_configmap.py"
    data = yaml.safe_load(current)["data"]
    for spec in config.KEYS:
        if spec.name in gen_configmap.SET_ELSEWHERE:
            assert spec.env not in data and f"# {spec.env}:" in current
        else:
            assert data[spec.env] == gen_configmap.value_text(spec), spec.name


def test_gen_configmap_check_mode(tmp_path: Path) -> None:
    script = str(REPO / "scripts" / "gen_configmap.py")
    out = tmp_path / "cm.yaml"
    r = subprocess.run([sys.executable, script, "--check", "--output", str(out)], capture_output=True, text=True)
    assert r.returncode == 1 and "run scripts/gen_configmap.py" in r.stderr
    subprocess.run([sys.executable, script, "--output", str(out)], check=True, capture_output=True)
    r = subprocess.run([sys.executable, script, "--check", "--output", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_configmap_values_load_with_config_load(objs) -> None:
    env = dict(objs[("ConfigMap", "vppagent-config")].data)
    env["VPPAGENT_NODE_NAME"] = "node-a"  # the DaemonSet's fieldRef
    cfg = config.load(env)
    for spec in config.KEYS:
        if spec.default is not None:
            assert getattr(cfg, spec.name) == spec.parse(spec.default), spec.name
    assert cfg.kubeconfig is None and cfg.api_dir is None


def test_a_bad_configmap_value_is_one_line_naming_the_key(objs) -> None:
    env = dict(objs[("ConfigMap", "vppagent-config")].data, VPPAGENT_NODE_NAME="node-a",
               VPPAGENT_HEALTH_PORT="ninety")
    with pytest.raises(config.ConfigError) as e:
        config.load(env)
    assert e.value.key == "health_port" and "\n" not in str(e.value)
    env["VPPAGENT_HEALTH_PORT"] = "9710"
    env["VPPAGENT_NODE_NAME"] = ""
    with pytest.raises(config.ConfigError) as e:
        config.load(env)
    assert e.value.key == "node_name"


def test_ports_and_probes(objs, ds) -> None:
    agent = container(ds, "agent")
    ports = {p.name: p.container_port for p in agent.ports}
    health_port = int(objs[("ConfigMap", "vppagent-config")].data["VPPAGENT_HEALTH_PORT"])
    for probe, path in ((agent.liveness_probe, "/healthz"), (agent.readiness_probe, "/readyz")):
        assert probe.http_get.path == path
        port = probe.http_get.port
        assert (ports.get(port) if isinstance(port, str) else port) == health_port, f"{path} probes {port}"
    assert ports["health"] == health_port
    for c in ds.spec.template.spec.containers:
        assert c.name == "agent" or not c.ports, "only the agent serves a port"


def test_service_account_and_rbac(objs, ds) -> None:
    sa = objs[("ServiceAccount", "vppagent")]
    assert ds.spec.template.spec.service_account_name == sa.metadata.name
    binding = objs[("ClusterRoleBinding", "vppagent")]
    assert binding.role_ref.kind == "ClusterRole" and (binding.role_ref.kind, binding.role_ref.name) in objs
    assert [(s.kind, s.name, s.namespace) for s in binding.subjects] == [
        ("ServiceAccount", sa.metadata.name, sa.metadata.namespace)]
    rules = {}
    for r in objs[("ClusterRole", "vppagent")].rules:
        assert "*" not in r.verbs and "*" not in r.resources and "*" not in r.api_groups
        assert not r.resource_names and not r.non_resource_urls
        for g in r.api_groups:
            for res in r.resources:
                rules[(g, res)] = set(r.verbs)
    assert rules == {
        ("", "nodes"): {"list", "watch", "patch"},
        ("", "pods"): {"list", "watch"},
        ("", "namespaces"): {"list", "watch"},
        ("", "services"): {"list", "watch"},
        ("discovery.k8s.io", "endpointslices"): {"list", "watch"},
        ("networking.k8s.io", "networkpolicies"): {"list", "watch"},
        ("", "events"): {"create", "patch"},
    }
    assert "vppagent.io/" in (DEPLOY / "rbac.yaml").read_text(), "say how node patches are limited"


def test_container_arguments_parse_with_the_projects_own_parsers(ds, capsys) -> None:
    from startup.__main__ import parser as startup_parser
    from vppagent.cni.install import _parser as install_parser

    vpp = container(ds, "vpp")
    a = startup_parser().parse_args(vpp.args)
    assert a.cmd == "run" and a.i_know_this_is_the_host, "the pod runs in the host's netns (hostNetwork)"
    script = container(ds, "install-cni").command[-1]
    words = shlex.split(script.split("vppagent-cni install", 1)[1])
    opts = install_parser().parse_args(words)
    assert str(opts.bin_dir) == "/host/opt/cni/bin" and str(opts.conf_dir) == "/host/etc/cni/net.d"
    cni_default = next(k.default for k in config.KEYS if k.name == "cni_socket")
    assert opts.agent_socket == cni_default, "the plugin dials the socket the agent serves"
    mounts = {m.mount_path for m in container(ds, "install-cni").volume_mounts}
    assert {"/host/opt/cni/bin", "/host/etc/cni/net.d"} <= mounts
