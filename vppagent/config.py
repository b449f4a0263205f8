"""The agent's configuration: defaults, an optional YAML file, environment variables.

Owns: the list of keys (``KEYS``: name, environment variable, default,
parser, meaning), where values come from, and validation. Precedence, from
strongest: environment variable, YAML file (``--config`` or
``VPPAGENT_CONFIG``), default. The YAML file is a mapping of the key names
(``vpp_socket: /run/vpp/api.sock``); an unknown key is an error, so that a
typo is never silently ignored. Any invalid value raises ``ConfigError``
naming the key (and where the value came from) in one line.

Must not touch: the environment or the file system beyond reading them;
logging setup. ``load`` takes the environment as a mapping so that tests
need no global state.
"""
from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from vppagent.iptypes import IpNetwork


ENV_CONFIG = "VPPAGENT_CONFIG"
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """One invalid configuration value (or an unreadable file), in one line."""

    def __init__(self, key: str, where: str, reason: str):
        self.key = key
        self.where = where
        self.reason = reason
        super().__init__(f"invalid configuration: {key} ({where}): {reason}")


# -- parsers: text (env) or YAML value -> typed value; raise ValueError with a reason --


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {v!r}")
    return v.strip()


def _nonempty(v: Any) -> str:
    s = _str(v)
    if not s:
        raise ValueError("must not be empty")
    return s


def _optional_path(v: Any) -> str | None:
    if v is None:
        return None
    s = _str(v)
    return s or None


def _int_in(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(v: Any) -> int:
        if isinstance(v, bool):
            raise ValueError(f"expected an integer, got {v!r}")
        try:
            n = int(v) if not isinstance(v, float) or v.is_integer() else int("x")
        except (TypeError, ValueError):
            raise ValueError(f"expected an integer, got {v!r}") from None
        if not lo <= n <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {n}")
        return n
    return parse


def _seconds(lo: float, hi: float) -> Callable[[Any], float]:
    def parse(v: Any) -> float:
        if isinstance(v, bool):
            raise ValueError(f"expected a number of seconds, got {v!r}")
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number of seconds, got {v!r}") from None
        if not lo <= x <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g} seconds, got {x:g}")
        return x
    return parse


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {v!r}")


def _choice(*allowed: str) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        s = _str(v).lower()
        if s not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {v!r}")
        return s
    return parse


def _cidrs(v: Any) -> tuple[IpNetwork, ...]:
    items = v if isinstance(v, (list, tuple)) else [x for x in _str(v).split(",")]
    out = []
    for item in items:
        text = _str(item)
        if not text:
            continue
        try:
            out.append(ipaddress.ip_network(text))
        except ValueError:
            raise ValueError(f"{text!r} is not a CIDR with its host bits zero (e.g. 10.96.0.0/12)") from None
    return tuple(out)


def _address(v: Any) -> str:
    s = _nonempty(v)
    try:
        ipaddress.ip_address(s)
    except ValueError:
        raise ValueError(f"{s!r} is not an IP address") from None
    return s


def _port_range(v: Any) -> tuple[int, int]:
    s = _str(v)
    lo, sep, hi = s.partition("-")
    try:
        a, b = int(lo), int(hi)
    except ValueError:
        raise ValueError(f"expected FIRST-LAST ports (e.g. 30000-32767), got {v!r}") from None
    if not sep or not 1 <= a <= b <= 65535:
        raise ValueError(f"expected FIRST-LAST ports with 1 <= FIRST <= LAST <= 65535, got {v!r}")
    return a, b


HASH_FIELDS = ("src-ip", "dst-ip", "src-port", "dst-port", "proto")


def _hash_fields(v: Any) -> tuple[str, ...]:
    items = [x.strip().lower() for x in (v if isinstance(v, (list, tuple)) else _str(v).split(","))]
    items = [x for x in items if x]
    bad = [x for x in items if x not in HASH_FIELDS]
    if bad or not items:
        raise ValueError(f"must be a non-empty subset of {', '.join(HASH_FIELDS)}, got {v!r}")
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class KeySpec:
    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str

    @property
    def env(self) -> str:
        return "VPPAGENT_" + self.name.upper()


def _default_node_name() -> str:
    return os.environ.get("NODE_NAME") or socket.gethostname()


KEYS: tuple[KeySpec, ...] = (
    KeySpec("node_name", None, _nonempty,
            "this node's name in Kubernetes (default: $NODE_NAME, else the host name)"),
    KeySpec("kubeconfig", None, _optional_path,
            "kubeconfig file; unset: the in-cluster service account, else $KUBECONFIG or ~/.kube/config"),
    KeySpec("vpp_socket", "/run/vpp/api.sock", _nonempty, "VPP's binary API socket"),
    KeySpec("api_dir", None, _optional_path,
            "directory of VPP's *.api.json definitions (unset: /usr/share/vpp/api)"),
    KeySpec("vpp_timeout_s", 10.0, _seconds(0.1, 600), "how long to wait for one VPP reply"),
    KeySpec("cluster_cidrs", "10.244.0.0/16", _cidrs,
            "the cluster's pod CIDRs (comma-separated); node routes inside them belong to the agent"),
    KeySpec("service_cidrs", "10.96.0.0/12", _cidrs,
            "the cluster's service CIDRs (comma-separated); cnat translations with a VIP inside belong to the agent"),
    KeySpec("pod_table_id", 0, _int_in(0, 2**32 - 2), "the VPP IP table (VRF) pod traffic is routed in"),
    KeySpec("connectivity", "flat", _choice("flat", "ipip", "vxlan", "none"),
            "how pods reach other nodes in clear: flat (a route per remote pod CIDR via the node's InternalIP), "
            "ipip or vxlan (a tunnel per peer node), none (not at all; no encryption either)"),
    KeySpec("key_dir", "", _str,
            "directory of this node's private keys (ipsec.key, wireguard.key, mode 0600; empty: <state_dir>/keys)"),
    KeySpec("encryption_default", "none", _choice("none", "ipsec", "wireguard"),
            "this node's encryption when its Node has no vppagent.io/encryption annotation"),
    KeySpec("wireguard_port", 51820, _int_in(1, 65535), "UDP port every node's WireGuard interface listens on"),
    KeySpec("wireguard_keepalive_s", 25, _int_in(0, 3600), "WireGuard persistent keepalive (0: off)"),
    KeySpec("ipsec_rekey_switch_s", 5.0, _seconds(0, 600),
            "after a new IPsec key generation appears, send with it only this much later (must exceed the "
            "Node watch latency between two nodes)"),
    KeySpec("ipsec_rekey_overlap_s", 30.0, _seconds(0, 3600),
            "how long the previous IPsec inbound SA stays valid after the switch"),
    KeySpec("ipsec_key_lifetime_s", 3600.0, _seconds(60, 86400 * 30), "IPsec key lifetime (time)"),
    KeySpec("ipsec_key_lifetime_bytes", 1 << 40, _int_in(1 << 20, 1 << 60),
            "IPsec key lifetime (bytes through any one SA)"),
    KeySpec("vxlan_vni", 7000, _int_in(1, (1 << 24) - 1), "VNI of the node-to-node VXLAN tunnels"),
    KeySpec("services", True, _bool, "program ClusterIP services as cnat translations"),
    KeySpec("policies", True, _bool,
            "enforce Kubernetes NetworkPolicy on this node's pods (kpol plugin; the ACL plugin on a VPP without it)"),
    KeySpec("health_address", "127.0.0.1", _address,
            "address of the /healthz, /readyz and /metrics server (localhost by default; set the node's "
            "address to let Prometheus scrape)"),
    KeySpec("health_port", 9710, _int_in(0, 65535), "port of that server (0: any free port)"),
    KeySpec("status_socket", "/var/run/vppagent/status.sock", _nonempty,
            "unix socket (mode 0600) the operator CLI reads the agent's state from (vppagent status|show)"),
    KeySpec("stats_socket", "/run/vpp/stats.sock", _optional_path,
            "VPP's stats socket, read for per-interface, error and policy metrics (empty: no VPP stats metrics)"),
    KeySpec("log_level", "info", _choice(*LOG_LEVELS), "log level; logs are JSON lines on stderr"),
    KeySpec("retry_initial_s", 0.5, _seconds(0.01, 3600), "first retry delay of a failed VPP object"),
    KeySpec("retry_max_s", 30.0, _seconds(0.01, 3600), "longest retry delay of a failed VPP object"),
    KeySpec("resync_interval_s", 0.0, _seconds(0, 86400),
            "read VPP back and repair drift this often (0: only at start and after VPP restarts)"),
    KeySpec("bulk_chunk", 2048, _int_in(1, 65536), "operations per pipelined VPP batch"),
    KeySpec("watch_timeout_s", 300, _int_in(1, 3600), "server-side timeout of one Kubernetes watch request"),
    KeySpec("pods", True, _bool, "serve the CNI plugin and attach this node's pods to VPP"),
    KeySpec("cni_socket", "/var/run/vppagent/cni.sock", _nonempty,
            "unix socket of the agent's CNI gRPC backend (mode 0600, in a 0700 directory)"),
    KeySpec("state_dir", "/var/lib/vppagent", _nonempty,
            "directory of the agent's crash-safe state (IPAM journal, pod attachments, keys)"),
    KeySpec("pod_interface", "auto", _choice("auto", "tun", "veth"),
            "pod interface driver: tun (VPP tap in tun mode, needs /dev/vhost-net), veth (veth + af_packet), "
            "auto (tun where /dev/vhost-net exists, else veth)"),
    KeySpec("pod_spare_interfaces", 8, _int_in(0, 256),
            "veth driver: veth + af_packet interfaces made ahead while the CNI is idle, so that an ADD "
            "skips VPP's attach (each holds about 6 MB of kernel ring memory; 0: none)"),
    KeySpec("pod_af_packet_version", 2, _int_in(2, 3),
            "veth driver: TPACKET version of the pods' af_packet rings: 2 (no per-pod kernel timer; the node's "
            "control plane stays fast with hundreds of pods) or 3 (VPP's default: a 1 ms timer per pod batches "
            "packets, faster bulk TCP, but costs every node CPU while idle)"),
    KeySpec("pod_offloads", True, _bool,
            "veth driver: pods keep TCP's TX checksum, TSO and GSO (UDP and tunnel segmentation stay off), so "
            "64 KB frames cross VPP; needs our kpod plugin (IPv4 frames VPP segments itself, WireGuard); "
            "false: pods cut and checksum every segment themselves, several times slower "
            "(docs/upstream-vpp-af-packet-offloads.md)"),
    KeySpec("kernel_rcu_expedited", True, _bool,
            "set /sys/kernel/rcu_expedited while the agent serves pods (restored on a clean stop): creating "
            "and deleting af_packet sockets and network devices waits for RCU grace periods, 5-10x shorter "
            "expedited; costs an IPI to busy CPUs per grace period"),
    KeySpec("uplink_mtu", 1500, _int_in(576, 9216), "MTU of the node's uplink (the underlay of node-to-node traffic)"),
    KeySpec("pod_mtu", 0, _int_in(0, 9216),
            "MTU of pod interfaces, on both the pod and the VPP side (0: the largest that never fragments "
            "in the connectivity mode and either encryption, from uplink_mtu)"),
    KeySpec("service_external_cidrs", "", _cidrs,
            "CIDRs of LoadBalancer and external IPs; cnat translations with a VIP inside belong to the agent"),
    KeySpec("node_port_range", "30000-32767", _port_range, "the cluster's NodePort range"),
    KeySpec("service_hash_fields", "src-ip,dst-ip,src-port,dst-port,proto", _hash_fields,
            "packet fields hashed to pick a service backend (comma-separated subset of "
            "src-ip, dst-ip, src-port, dst-port, proto)"),
    KeySpec("service_snat", True, _bool,
            "source-NAT pod traffic leaving the cluster, and NodePort traffic sent to a remote backend"),
    KeySpec("service_reject", True, _bool,
            "answer ICMP unreachable for cluster, LoadBalancer and external IPs on ports nothing translates "
            "(a Service without endpoints), as kube-proxy rejects; false: such traffic is routed as any"),
)


@dataclass(frozen=True)
class Config:
    node_name: str
    kubeconfig: str | None
    vpp_socket: str
    api_dir: str | None
    vpp_timeout_s: float
    cluster_cidrs: tuple[IpNetwork, ...]
    service_cidrs: tuple[IpNetwork, ...]
    pod_table_id: int
    connectivity: str
    key_dir: str
    encryption_default: str
    wireguard_port: int
    wireguard_keepalive_s: int
    ipsec_rekey_switch_s: float
    ipsec_rekey_overlap_s: float
    ipsec_key_lifetime_s: float
    ipsec_key_lifetime_bytes: int
    vxlan_vni: int
    services: bool
    policies: bool
    health_address: str
    health_port: int
    status_socket: str
    stats_socket: str | None
    log_level: str
    retry_initial_s: float
    retry_max_s: float
    resync_interval_s: float
    bulk_chunk: int
    watch_timeout_s: int
    pods: bool
    cni_socket: str
    state_dir: str
    pod_interface: str
    pod_spare_interfaces: int
    pod_af_packet_version: int
    pod_offloads: bool
    kernel_rcu_expedited: bool
    uplink_mtu: int
    pod_mtu: int
    service_external_cidrs: tuple[IpNetwork, ...]
    node_port_range: tuple[int, int]
    service_hash_fields: tuple[str, ...]
    service_snat: bool
    service_reject: bool
    config_file: str | None = None


_KEY_NAMES = {k.name for k in KEYS}
assert _KEY_NAMES == {f.name for f in fields(Config)} - {"config_file"}


def _read_file(path: str) -> dict[str, Any]:
    where = f"file {path}"
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(ENV_CONFIG, where, f"cannot read: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(ENV_CONFIG, where, f"not valid YAML{at}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(ENV_CONFIG, where, "must be a mapping of configuration keys")
    for key in data:
        if key not in _KEY_NAMES:
            raise ConfigError(str(key), where, f"unknown key (known: {', '.join(sorted(_KEY_NAMES))})")
    return data


def load(env: Mapping[str, str] | None = None, config_file: str | None = None) -> Config:
    """Build and validate the configuration; raises ConfigError naming the first bad key."""
    env = os.environ if env is None else env
    path = config_file or env.get(ENV_CONFIG) or None
    from_file = _read_file(path) if path else {}
    values: dict[str, Any] = {}
    for spec in KEYS:
        if spec.env in env:
            raw, where = env[spec.env], f"environment {spec.env}"
        elif spec.name in from_file:
            raw, where = from_file[spec.name], f"file {path}"
        else:
            raw, where = spec.default, "default"
        if raw is None and spec.name == "node_name":
            raw = _default_node_name()
        try:
            values[spec.name] = spec.parse(raw) if raw is not None else None
        except ValueError as e:
            raise ConfigError(spec.name, where, str(e)) from None
    cfg = Config(**values, config_file=path)
    _check(cfg)
    return cfg


def safe_pod_mtu(cfg: Config) -> int:
    """The largest pod MTU that never fragments: the clear mode and both encryptions, since a
    node's encryption changes at run time while pod interfaces keep their MTU."""
    from vppagent.connectivity import mtu

    modes = ["ipsec", "wireguard"] + ([cfg.connectivity] if cfg.connectivity in mtu.MODES else [])
    return mtu.pod_mtu(cfg.uplink_mtu, modes)


def _check(cfg: Config) -> None:
    """Constraints between keys."""
    if cfg.pod_mtu:
        if cfg.pod_mtu < 576:
            raise ConfigError("pod_mtu", "combined", f"{cfg.pod_mtu} is below 576 (0 means automatic)")
        if cfg.pod_mtu > safe_pod_mtu(cfg):
            raise ConfigError("pod_mtu", "combined", f"{cfg.pod_mtu} would fragment: with uplink_mtu "
                              f"{cfg.uplink_mtu} and connectivity {cfg.connectivity} (plus IPsec or WireGuard "
                              f"when a node turns them on) pods can have at most {safe_pod_mtu(cfg)}")
    if cfg.retry_initial_s > cfg.retry_max_s:
        raise ConfigError("retry_initial_s", "combined", f"{cfg.retry_initial_s:g}s exceeds "
                          f"retry_max_s {cfg.retry_max_s:g}s")
    if cfg.services and not cfg.service_cidrs:
        raise ConfigError("service_cidrs", "combined", "empty while services are enabled")
    if cfg.connectivity != "none" and not cfg.cluster_cidrs:
        raise ConfigError("cluster_cidrs", "combined", f"empty while connectivity is {cfg.connectivity}")
    for name in ("service_cidrs", "cluster_cidrs", "service_external_cidrs"):
        nets = getattr(cfg, name)
        for i, a in enumerate(nets):
            for b in nets[i + 1:]:
                if a.version == b.version and a.overlaps(b):
                    raise ConfigError(name, "combined", f"{a} and {b} overlap")
    for s in cfg.service_cidrs:
        for c in cfg.cluster_cidrs:
            if s.version == c.version and s.overlaps(c):
                raise ConfigError("service_cidrs", "combined", f"{s} overlaps cluster CIDR {c}")


def key_dir(cfg: Config) -> Path:
    """Where this node's private keys live."""
    return Path(cfg.key_dir) if cfg.key_dir else Path(cfg.state_dir) / "keys"


def describe() -> list[tuple[str, str, str, str]]:
    """(key, environment variable, default, meaning) for every key, for documentation."""
    out = []
    for k in KEYS:
        default = "unset" if k.default is None else str(k.default).lower() if isinstance(k.default, bool) else str(k.default)
        out.append((k.name, k.env, default, k.help))
    return [(ENV_CONFIG.lower().removeprefix("vppagent_"), ENV_CONFIG, "unset",
             "path of the optional YAML configuration file (also --config)")] + out
