"""deploy/*.yaml loaded into the ``kubernetes`` client's models, and their cross-references:
volumes and mounts, the ConfigMap and the env, ports and probes, the ServiceAccount and RBAC,
every container's security context. Also: the ConfigMap is what scripts/gen_configmap.py writes,
and its values load with config.load. (The node policy's CEL: test_node_policy.py.)"""
from __future__ import annotations

import importlib.util
import ipaddress
import re
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
          ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "V1ClusterRoleBinding",
          ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"): "V1ValidatingAdmissionPolicy",
          ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"):
              "V1ValidatingAdmissionPolicyBinding"}


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


def all_containers(ds) -> list:
    pod = ds.spec.template.spec
    return (pod.init_containers or []) + (pod.containers or [])


def _container_text(text: str, name: str) -> str:
    """The lines of daemonset.yaml that define container ``name`` (up to the next list item or key
    at the same or a lower indentation)."""
    m = re.search(rf"^( *)- name: {re.escape(name)}\n\1  image:", text, re.MULTILINE)
    assert m, f"container {name} not found in daemonset.yaml"
    indent = len(m[1])
    lines = text[m.start():].splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        stripped = line.lstrip(" ")
        if stripped and not stripped.startswith("#") and len(line) - len(stripped) <= indent:
            break
        out.append(line)
    return "\n".join(out)


def test_the_expected_objects_exist(objs) -> None:
    assert set(objs) == {("ServiceAccount", "vppagent"), ("ClusterRole", "vppagent"),
                         ("ClusterRoleBinding", "vppagent"), ("ConfigMap", "vppagent-config"),
                         ("DaemonSet", "vppagent"),
                         ("ValidatingAdmissionPolicy", "vppagent-node-annotations"),
                         ("ValidatingAdmissionPolicyBinding", "vppagent-node-annotations")}
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
    for c in all_containers(ds):
        section = _container_text(text, c.name)
        for cap in c.security_context.capabilities.add or []:
            assert cap in header, f"{c.name}: capability {cap} not justified in the header comment"
            assert re.search(rf"^ *- {cap} +# *\w", section, re.MULTILINE), \
                f"{c.name}: capability {cap} has no reason beside it ('- {cap}  # why')"


# What each container may add back after dropping ALL (the reasons are in daemonset.yaml).
ALLOWED_CAPABILITIES = {
    "install-cni": {"CHOWN", "DAC_OVERRIDE", "FOWNER"},
    "vpp": {"IPC_LOCK", "NET_ADMIN", "NET_RAW", "SYS_ADMIN", "SYS_NICE", "SYS_RESOURCE"},
    "agent": {"NET_ADMIN", "SYS_ADMIN", "NET_RAW"},
}


def test_every_container_is_hardened(ds) -> None:
    pod = ds.spec.template.spec
    assert pod.security_context and pod.security_context.seccomp_profile, "no pod seccompProfile"
    assert pod.security_context.seccomp_profile.type == "RuntimeDefault"
    assert not (pod.host_pid or pod.host_ipc), "only the network namespace is the host's"
    assert {c.name for c in all_containers(ds)} == set(ALLOWED_CAPABILITIES)
    for c in all_containers(ds):
        sc = c.security_context
        assert sc is not None, f"{c.name}: no securityContext"
        assert not sc.privileged, f"{c.name}: capabilities are listed, not privileged"
        assert sc.allow_privilege_escalation is False, \
            f"{c.name}: allowPrivilegeEscalation must be false (root with its capabilities needs none)"
        assert sc.read_only_root_filesystem is True, f"{c.name}: readOnlyRootFilesystem must be true"
        assert sc.run_as_user == 0, f"{c.name}: its capabilities are effective only as root (no ambient set)"
        assert sc.seccomp_profile is None or sc.seccomp_profile.type == "RuntimeDefault", c.name
        assert sc.capabilities.drop == ["ALL"], c.name
        assert set(sc.capabilities.add or []) <= ALLOWED_CAPABILITIES[c.name], c.name


def test_read_only_containers_can_write_where_they_must(ds) -> None:
    pod = ds.spec.template.spec
    volumes = {v.name: v for v in pod.volumes}

    def writable(c) -> set[Path]:
        return {Path(m.mount_path) for m in c.volume_mounts if not m.read_only
                and (volumes[m.name].host_path or volumes[m.name].empty_dir)}

    def under(path: str, dirs: set[Path]) -> bool:
        return any(Path(path) == d or d in Path(path).parents for d in dirs)

    vpp, agent = container(ds, "vpp"), container(ds, "agent")
    # startup: its snapshot in --state-dir, VPP's runtime dir, sockets and log in <state-dir>/vpp
    from startup.manager import BringUpConfig

    state_dir = vpp.args[vpp.args.index("--state-dir") + 1]
    for path in (state_dir, str(BringUpConfig(state_dir=Path(state_dir)).vpp_workdir), "/run/vpp",
                 "/tmp", "/var/run/dpdk", "/dev/hugepages"):
        assert under(path, writable(vpp)), f"vpp writes {path}, not a writable volume"
    # the agent: its state, keys and sockets, the CNI cache, pods' netns, temporary files
    defaults = {k.name: k.default for k in config.KEYS}
    for path in (defaults["cni_socket"], defaults["status_socket"], "/var/lib/vppagent",
                 "/var/lib/vppagent/keys", "/var/lib/cni", "/var/run/netns", "/tmp"):
        assert under(path, writable(agent)), f"agent writes {path}, not a writable volume"
    for path in ("/host/opt/cni/bin", "/host/etc/cni/net.d", "/host/opt/vppagent"):
        assert under(path, writable(container(ds, "install-cni"))), path
    for v in volumes.values():
        if v.empty_dir is not None and v.empty_dir.medium != "HugePages-2Mi":
            assert v.empty_dir.size_limit, f"emptyDir {v.name} has no sizeLimit"


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


def test_health_server_is_localhost_only_by_default(objs, ds) -> None:
    default = next(k.default for k in config.KEYS if k.name == "health_address")
    assert ipaddress.ip_address(default).is_loopback, \
        f"health_address defaults to {default}: under hostNetwork that serves /metrics on the node's addresses"
    cm = objs[("ConfigMap", "vppagent-config")].data
    assert cm["VPPAGENT_HEALTH_ADDRESS"] == default
    agent = container(ds, "agent")
    assert "VPPAGENT_HEALTH_ADDRESS" not in {e.name for e in agent.env or []}, "the shipped default is localhost"
    assert config.load({"VPPAGENT_NODE_NAME": "n"}).health_address == default


def test_ports_and_probes(objs, ds) -> None:
    agent = container(ds, "agent")
    ports = {p.name: p.container_port for p in agent.ports}
    health_port = int(objs[("ConfigMap", "vppagent-config")].data["VPPAGENT_HEALTH_PORT"])
    health_address = objs[("ConfigMap", "vppagent-config")].data["VPPAGENT_HEALTH_ADDRESS"]
    for probe, path in ((agent.liveness_probe, "/healthz"), (agent.readiness_probe, "/readyz")):
        assert probe.http_get.path == path
        # hostNetwork: the kubelet shares the agent's netns and reaches its localhost; without
        # host: it would probe the pod IP (the node's address), where nothing listens.
        assert probe.http_get.host == health_address == "127.0.0.1", f"{path} probes host {probe.http_get.host}"
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
        ("", "events"): {"create"},
    }
    text = (DEPLOY / "rbac.yaml").read_text()
    assert "vppagent.io/" in text, "say how node patches are limited"
    assert "node-annotations-policy.yaml" in text and (DEPLOY / "node-annotations-policy.yaml").is_file()
    assert "create/patch" not in text


def test_the_roles_write_verbs_are_what_the_agent_calls() -> None:
    """Every Kubernetes write in the product is one the ClusterRole allows, and the role allows no
    write the product never makes (the agent creates Events and patches its Node, nothing else)."""
    calls: set[str] = set()
    for f in Path(config.__file__).parent.rglob("*.py"):
        calls |= set(re.findall(r"\.((?:create|patch|replace|delete)_\w+)\(", f.read_text()))
    kube_writes = {c for c in calls if c.endswith(("_event", "_node"))}
    assert kube_writes == {"create_namespaced_event", "patch_node"}, kube_writes


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


def test_the_docs_apply_every_manifest() -> None:
    files = {f.name for f in DEPLOY.glob("*.yaml")}
    for doc in (DEPLOY / "README.md", REPO / "docs" / "operations.md"):
        applies = [ln for ln in doc.read_text().splitlines() if "kubectl apply" in ln and "deploy/" in ln]
        assert applies, f"{doc.name}: no kubectl apply of deploy/"
        named = set(re.findall(r"deploy/([\w.-]+\.yaml)", " ".join(applies)))
        assert named == files, f"{doc.name} applies {sorted(named)}, deploy/ has {sorted(files)}"
    readme = (DEPLOY / "README.md").read_text()
    section = readme.split("## Limiting node patches", 1)[1].split("\n## ", 1)[0]
    assert "node-annotations-policy.yaml" in section and "1.30" in section
