"""Bring-up steps in order: pre-flight, snapshot, takeover, restore.

Owns the order of changes and their undoing. Pre-flight (:func:`preflight`)
checks everything that can be checked without touching the node: the netns
is not the host's (unless explicitly allowed), the template renders, the
uplink exists and is free, the driver can work, the names are unused. Only
then is the snapshot written, and only after that does anything change. A
failure after that point rolls back to the snapshot before raising.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import IPRoute

from . import drivers, hostpath, linkstate, netns, snapshot, template
from .errors import (
    HostNetnsRefusedError,
    InterfaceMismatchError,
    SnapshotExistsError,
    StartupError,
    TakeoverError,
    UplinkError,
    WrongNetnsError,
)
from .hostpath import HostPathNames
from .snapshot import Snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BringUpConfig:
    state_dir: Path
    vpp_bin: str | None = None
    api_dir: str | None = None
    uplink: str | None = None
    driver: str = "af_packet"
    template: Path | None = None
    workers: int = 0
    names: HostPathNames = field(default_factory=HostPathNames)
    # Taking over the host's own netns is refused unless this is set.
    allow_host: bool = False

    @property
    def vpp_workdir(self) -> Path:
        return Path(self.state_dir) / "vpp"


@dataclass(frozen=True)
class Plan:
    uplink: linkstate.InterfaceState
    driver: str
    probes: tuple[drivers.Probe, ...]
    startup_conf: str


def refuse_host(allow_host: bool, what: str) -> None:
    if netns.is_host() and not allow_host:
        raise HostNetnsRefusedError(
            f"refusing to {what} in the host's network namespace (the one of pid 1); "
            "run inside the node's netns, or pass --i-know-this-is-the-host")


def preflight(cfg: BringUpConfig) -> Plan:
    """Everything that can fail without a change. Raises a StartupError with ``changed=False``."""
    refuse_host(cfg.allow_host, "take over an uplink")
    if snapshot.load(Path(cfg.state_dir)) is not None:
        raise SnapshotExistsError(f"a snapshot from an earlier run is in {cfg.state_dir}: restore it first")
    conf = template.render_file(cfg.template, template.RenderInput(cfg.vpp_workdir, workers=cfg.workers))
    with IPRoute() as ipr:
        name = linkstate.find_uplink(cfg.uplink, ipr)
        linkstate.wait_settled(name, ipr)
        state = linkstate.capture(name, ipr)
        if state.link.master:
            raise UplinkError(f"uplink {name} is enslaved to ifindex {state.link.master}; "
                              "take over the master or free it first")
        if name in cfg.names.all():
            raise UplinkError(f"uplink {name} has the name bring-up uses for its own interfaces")
        taken = hostpath.created_present(ipr, cfg.names)
        if taken:
            raise UplinkError(f"interface name(s) {', '.join(taken)} already exist; "
                              "choose other names or remove them")
    driver, probes = drivers.choose(cfg.driver, state.link, drivers.plugin_dir(cfg.vpp_bin))
    if cfg.vpp_bin and not (os.path.isfile(cfg.vpp_bin) and os.access(cfg.vpp_bin, os.X_OK)):
        raise StartupError(f"VPP binary {cfg.vpp_bin} does not exist or is not executable")
    return Plan(state, driver, tuple(probes), conf)


def begin(cfg: BringUpConfig, plan: Plan) -> Snapshot:
    """Persist the snapshot, then create the host's veth pair (traffic still on the uplink)."""
    snap = Snapshot(netns.current(), plan.uplink, cfg.names, plan.driver)
    snapshot.save(Path(cfg.state_dir), snap)
    try:
        with IPRoute() as ipr:
            hostpath.prepare(ipr, plan.uplink, cfg.names)
    except BaseException as e:
        rollback(cfg, snap, e)
    return snap


def switch_over(cfg: BringUpConfig, snap: Snapshot) -> None:
    """Quarantine the uplink and move its addresses/routes to the host veth (VPP already attached)."""
    try:
        with IPRoute() as ipr:
            hostpath.move_to_host(ipr, snap.uplink, cfg.names)
    except BaseException as e:
        rollback(cfg, snap, e)


def rollback(cfg: BringUpConfig, snap: Snapshot, cause: BaseException) -> None:
    """Restore the snapshot after a failed step, then raise TakeoverError from ``cause``."""
    log.error("takeover failed, restoring", extra={"uplink": snap.uplink.link.name, "error": str(cause)})
    restore(cfg.state_dir, allow_host=cfg.allow_host, snap=snap)
    raise TakeoverError(f"takeover of {snap.uplink.link.name} failed and was rolled back: {cause}") from cause


def check_identity(snap: Snapshot, ipr: IPRoute) -> None:
    """Refuse (changing nothing) unless this is the netns and the uplink of the snapshot."""
    here = netns.current()
    if here != snap.netns:
        raise WrongNetnsError(
            f"snapshot was taken in netns {snap.netns.dev}:{snap.netns.ino}, this is {here.dev}:{here.ino}; "
            "nothing was changed")
    want = snap.uplink.link
    try:
        cur = linkstate.read_link(ipr, want.ifindex)
    except Exception:
        raise InterfaceMismatchError(f"no interface with ifindex {want.ifindex} ({want.name}) here; "
                                     "nothing was changed") from None
    for attr in ("name", "kind", "mac"):
        if getattr(cur, attr) != getattr(want, attr):
            raise InterfaceMismatchError(
                f"ifindex {want.ifindex} has {attr} {getattr(cur, attr)!r}, the snapshot says "
                f"{getattr(want, attr)!r}; nothing was changed")


def _stop_recorded_vpp(snap: Snapshot) -> None:
    """Stop the VPP a crashed run left, if that pid is still that VPP (its workdir in argv)."""
    if not snap.vpp_pid or not snap.vpp_workdir:
        return
    try:
        argv = Path(f"/proc/{snap.vpp_pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    if not any(snap.vpp_workdir.encode() in a for a in argv):
        return
    os.kill(snap.vpp_pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{snap.vpp_pid}").exists():
        time.sleep(0.05)
    if Path(f"/proc/{snap.vpp_pid}").exists():
        os.kill(snap.vpp_pid, signal.SIGKILL)


def restore(state_dir: Path, *, allow_host: bool = False, snap: Snapshot | None = None) -> bool:
    """Restore from the snapshot in ``state_dir`` (or ``snap``); False when there is none.

    Identity checks come first and change nothing when they fail. The snapshot
    file is removed only after an exact restore.
    """
    snap = snap or snapshot.load(Path(state_dir))
    if snap is None:
        return False
    with IPRoute() as ipr:
        check_identity(snap, ipr)
        refuse_host(allow_host, "restore a snapshot")
        _stop_recorded_vpp(snap)
        hostpath.restore(ipr, snap.uplink, snap.names)
    snapshot.remove(Path(state_dir))
    return True
