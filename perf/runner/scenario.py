"""Scenario files: what one throughput run sets up, what load it offers and what it is compared with.

Owns the ``Scenario`` dataclass and its YAML loader. Every error names the
file and the key at fault (``ScenarioError``), so a typo is found before
any VPP starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"

ENVS = ("kernel", "local", "two-node", "kubectl")
POD_INTERFACES = ("veth", "tun", "memif")
TARGETS = ("pod", "service")
ENCRYPTIONS = ("none", "ipsec", "wireguard")
CONNECTIVITY = ("flat", "ipip", "vxlan")
KERNEL_MODES = ("bridge", "route")
# VPP threads (local env): its main thread only; one worker polling both pods; or the server pod
# on the main thread and the client on the worker, so every packet of a flow crosses threads.
THREADS = ("main", "worker", "split")
TOOLS = ("iperf3", "trex", "vpp-pg")
PROTOCOLS = ("tcp", "udp")
TREX_PROFILES = ("udp64", "imix")


class ScenarioError(ValueError):
    """A scenario file is missing, unreadable or has a bad key; the message names the file and key."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class Load:
    """One load generator run."""

    tool: str = "iperf3"
    protocol: str = "tcp"
    parallel: int = 1
    bitrate: str = "0"          # iperf3 -b (UDP); "0" is unlimited
    length: int | None = None   # iperf3 -l (UDP payload bytes); vpp-pg: IP packet bytes
    profile: str = "udp64"      # trex

    def comparable(self) -> "Load":
        """The load a kernel baseline (or a veth scenario) runs to compare with this one: for the
        packet generator, iperf3 UDP sending the same IP packet size."""
        if self.tool == "vpp-pg":
            return Load("iperf3", "udp", 1, "0", (self.length or 92) - 28)
        return self

    @property
    def label(self) -> str:
        if self.tool == "trex":
            return f"trex {self.profile}"
        if self.tool == "vpp-pg":
            return f"vpp-pg udp {self.length or 92}B IP"
        extra = f" {self.length}B" if self.length else ""
        return f"iperf3 {self.protocol}{extra} x{self.parallel}"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    env: str
    source: str = ""
    pod_interface: str = "veth"
    af_packet_version: int = 2          # veth pods' TPACKET rings (the agent's pod_af_packet_version)
    target: str = "pod"                 # pod-to-pod, or through a service VIP
    services: bool = False              # service NAT (cnat) on the pod interfaces
    policy: bool = False                # a NetworkPolicy on the server pod
    encryption: str = "none"            # two-node only
    connectivity: str = "flat"          # two-node only
    kernel_mode: str = "bridge"         # kernel env: veth + bridge, or routing between netns
    # Pods' TX checksum/TSO/GSO. None: as users get them, the kernel's defaults (on) in the kernel
    # env, the agent's default (on) in the VPP envs; False: turned off (a labelled, offloads-off row).
    pod_offloads: bool | None = None
    threads: str = "main"               # local env: see THREADS
    mtu: int = 1400
    baseline: str | None = None         # the kernel scenario run in the same session
    compare_to: str | None = None       # another scenario this one is held to (ratio target)
    target_ratio: float | None = None   # e.g. 0.9: within 10% of compare_to
    load: tuple[Load, ...] = (Load(),)
    kubectl: dict[str, Any] = field(default_factory=dict)

    @property
    def offloads_label(self) -> str:
        """What the pods' offloads were, for result notes."""
        if self.pod_offloads is False:
            return "off"
        if self.env == "kernel":
            return "kernel defaults (on)"
        return "on" if self.pod_offloads else "on (the agent's default)"

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict
        return asdict(self)


_KEYS = {"name", "description", "env", "pod_interface", "af_packet_version", "target", "services", "policy",
         "encryption", "connectivity", "kernel_mode", "pod_offloads", "threads", "mtu", "baseline", "compare_to",
         "target_ratio", "load", "kubectl"}
_LOAD_KEYS = {"tool", "protocol", "parallel", "bitrate", "length", "profile"}


def _choice(src: str, key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ScenarioError(src, key, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _typed(src: str, key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ScenarioError(src, key, f"expected {getattr(kind, '__name__', kind)}, got a boolean")
    if not isinstance(value, kind):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ScenarioError(src, key, f"expected {name}, got {type(value).__name__} {value!r}")
    return value


def _load(src: str, i: int, raw: Any) -> Load:
    key = f"load[{i}]"
    if not isinstance(raw, dict):
        raise ScenarioError(src, key, "expected a mapping (tool, protocol, parallel, ...)")
    unknown = set(raw) - _LOAD_KEYS
    if unknown:
        raise ScenarioError(src, f"{key}.{sorted(unknown)[0]}", f"unknown key (known: {', '.join(sorted(_LOAD_KEYS))})")
    tool = _choice(src, f"{key}.tool", raw.get("tool", "iperf3"), TOOLS)
    protocol = _choice(src, f"{key}.protocol", raw.get("protocol", "tcp"), PROTOCOLS)
    parallel = _typed(src, f"{key}.parallel", raw.get("parallel", 1), int)
    if not 1 <= parallel <= 128:
        raise ScenarioError(src, f"{key}.parallel", f"{parallel} is outside 1..128")
    bitrate = str(raw.get("bitrate", "0"))
    import re
    if not re.fullmatch(r"\d+(\.\d+)?[KMG]?", bitrate):
        raise ScenarioError(src, f"{key}.bitrate", f"{bitrate!r} is not an iperf3 rate like 0, 500M or 2G")
    length = raw.get("length")
    if length is not None:
        _typed(src, f"{key}.length", length, int)
        if not 16 <= length <= 65000:
            raise ScenarioError(src, f"{key}.length", f"{length} is outside 16..65000")
    profile = _choice(src, f"{key}.profile", raw.get("profile", "udp64"), TREX_PROFILES)
    return Load(tool, protocol, parallel, bitrate, length, profile)


def parse(raw: Any, source: str = "<scenario>") -> Scenario:
    """A Scenario from the mapping a YAML file holds."""
    if not isinstance(raw, dict):
        raise ScenarioError(source, "(top)", "expected a mapping of scenario keys")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ScenarioError(source, sorted(unknown)[0], f"unknown key (known: {', '.join(sorted(_KEYS))})")
    for required in ("name", "env"):
        if required not in raw:
            raise ScenarioError(source, required, "missing (required)")
    name = _typed(source, "name", raw["name"], str)
    env = _choice(source, "env", raw["env"], ENVS)
    loads_raw = raw.get("load", [{}])
    if not isinstance(loads_raw, list) or not loads_raw:
        raise ScenarioError(source, "load", "expected a non-empty list of load generator runs")
    target_ratio = raw.get("target_ratio")
    if target_ratio is not None:
        _typed(source, "target_ratio", target_ratio, (int, float))
        if not 0 < target_ratio <= 1:
            raise ScenarioError(source, "target_ratio", f"{target_ratio} is outside (0, 1]")
        if not raw.get("compare_to"):
            raise ScenarioError(source, "target_ratio", "needs compare_to (the scenario it is a ratio of)")
    sc = Scenario(
        name=name,
        description=_typed(source, "description", raw.get("description", ""), str),
        env=env,
        source=source,
        pod_interface=_choice(source, "pod_interface", raw.get("pod_interface", "veth"), POD_INTERFACES),
        af_packet_version=_typed(source, "af_packet_version", raw.get("af_packet_version", 2), int),
        target=_choice(source, "target", raw.get("target", "pod"), TARGETS),
        services=_typed(source, "services", raw.get("services", False), bool),
        policy=_typed(source, "policy", raw.get("policy", False), bool),
        encryption=_choice(source, "encryption", raw.get("encryption", "none"), ENCRYPTIONS),
        connectivity=_choice(source, "connectivity", raw.get("connectivity", "flat"), CONNECTIVITY),
        kernel_mode=_choice(source, "kernel_mode", raw.get("kernel_mode", "bridge"), KERNEL_MODES),
        pod_offloads=(None if raw.get("pod_offloads") is None
                      else _typed(source, "pod_offloads", raw["pod_offloads"], bool)),
        threads=_choice(source, "threads", raw.get("threads", "main"), THREADS),
        mtu=_typed(source, "mtu", raw.get("mtu", 1400), int),
        baseline=raw.get("baseline") and _typed(source, "baseline", raw["baseline"], str),
        compare_to=raw.get("compare_to") and _typed(source, "compare_to", raw["compare_to"], str),
        target_ratio=float(target_ratio) if target_ratio is not None else None,
        load=tuple(_load(source, i, item) for i, item in enumerate(loads_raw)),
        kubectl=_typed(source, "kubectl", raw.get("kubectl", {}), dict),
    )
    if any(ld.tool == "vpp-pg" for ld in sc.load) and sc.pod_interface != "memif":
        raise ScenarioError(source, "load", "tool vpp-pg drives memif pods only (pod_interface: memif)")
    if sc.af_packet_version not in (2, 3):
        raise ScenarioError(source, "af_packet_version", f"{sc.af_packet_version} is not 2 or 3")
    if not 576 <= sc.mtu <= 9000:
        raise ScenarioError(source, "mtu", f"{sc.mtu} is outside 576..9000")
    if sc.target == "service" and env not in ("local", "kubectl"):
        raise ScenarioError(source, "target", "a service VIP needs env local or kubectl")
    if sc.encryption != "none" and env not in ("two-node", "kubectl"):
        raise ScenarioError(source, "encryption", "encryption is between nodes: needs env two-node or kubectl")
    if env == "kernel" and (sc.services or sc.policy or sc.baseline):
        key = "services" if sc.services else "policy" if sc.policy else "baseline"
        raise ScenarioError(source, key, "a kernel scenario is itself the baseline: no VPP features")
    if env != "kernel" and not sc.baseline and not sc.kubectl.get("host_network"):
        raise ScenarioError(source, "baseline", "missing: every VPP figure is published with its kernel baseline")
    return sc


def load_file(path: Path) -> Scenario:
    source = str(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ScenarioError(source, "(file)", f"cannot read: {e.strerror or e}") from e
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ScenarioError(source, "(yaml)", f"not valid YAML: {e}") from e
    return parse(raw, source)


def find(name_or_path: str, directory: Path = SCENARIO_DIR) -> Scenario:
    """A scenario by file path, or by name in ``directory``."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return load_file(p)
    for candidate in (directory / f"{name_or_path}.yaml", directory / f"{name_or_path}.yml"):
        if candidate.exists():
            sc = load_file(candidate)
            if sc.name != name_or_path:
                raise ScenarioError(str(candidate), "name", f"{sc.name!r} differs from the file name")
            return sc
    known = ", ".join(s.name for s in all_scenarios(directory))
    raise ScenarioError(name_or_path, "(name)", f"no such scenario file (known: {known})")


def all_scenarios(directory: Path = SCENARIO_DIR) -> list[Scenario]:
    return [load_file(p) for p in sorted(directory.glob("*.yaml"))]
