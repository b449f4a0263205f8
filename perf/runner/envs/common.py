"""What every environment hands the runner, and the netns helpers they share."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


class EnvUnavailable(RuntimeError):
    """The environment cannot run here (no root, no VPP, no kubectl, ...): the scenario is skipped."""


class EnvError(RuntimeError):
    """The environment failed while being set up."""


@dataclass
class Setup:
    """A ready client/server pair and the handles to measure around it."""

    client_prefix: list[str]            # argv prefix running a command in the client pod
    server_prefix: list[str]
    target_ip: str                      # what the client sends to (server pod or a service VIP)
    server_ip: str
    server_rx_packets: Callable[[], int | None]  # packets the server pod's interface received
    vpps: list[Any] = field(default_factory=list)       # VppClient per VPP on the path
    pids: dict[str, list[int]] = field(default_factory=dict)  # "vpp"/"agent"/"pod_vpp" -> pids
    pod_vpps: dict[str, Any] = field(default_factory=dict)    # memif pods: "peer" -> the VPP holding both memifs
    pod_ips: dict[str, str] = field(default_factory=dict)     # "client"/"server" -> the address traffic uses
    notes: dict[str, Any] = field(default_factory=dict)


def netns_prefix(name: str) -> list[str]:
    return ["ip", "netns", "exec", name]


def rx_packets(netns: str, ifname: str = "eth0") -> int | None:
    # `ip netns exec` mounts the netns's own sysfs, so the counter is the pod's.
    r = subprocess.run(netns_prefix(netns) + ["cat", f"/sys/class/net/{ifname}/statistics/rx_packets"],
                       capture_output=True, text=True, timeout=10)
    return int(r.stdout) if r.returncode == 0 and r.stdout.strip().isdigit() else None


def set_offloads(netns: str, on: bool, ifname: str = "eth0") -> None:
    """Pods' TX checksum, TSO and GSO off (or left as the kernel set them)."""
    if on:
        return
    r = subprocess.run(netns_prefix(netns) + [sys.executable, "-c",
                       f"from startup.ethtool import disable_offloads; disable_offloads({ifname!r})"],
                       capture_output=True, text=True, cwd=str(REPO), timeout=20)
    if r.returncode != 0:
        raise EnvError(f"disabling offloads on {ifname} in {netns}: {r.stderr.strip()[-300:]}")


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise EnvUnavailable(f"{what} needs root (netns, veth)")


def need_vpp() -> str:
    """The vpp binary a private VPP starts from, or EnvUnavailable with ``testbed.targets``' reason."""
    from testbed.targets import real_vpp_reason, vpp_binary

    why = real_vpp_reason(private=True)
    binary = vpp_binary()
    if why or binary is None:
        raise EnvUnavailable(why or "no real VPP: set VPPAGENT_VPP_BIN")
    return binary
