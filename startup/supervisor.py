"""Running VPP for the node: start, take over, supervise, stop and restore.

Owns the lifetime of one bring-up (``python -m startup run``):

1. a snapshot left by a crashed run is restored first;
2. pre-flight; snapshot; host veth; VPP started (in this netns) with the
   rendered startup.conf; uplink and veth attached and cross-connected;
   addresses and routes moved to the host veth;
3. VPP is watched: when it exits it is restarted with exponential backoff
   (0.5 s doubling to 30 s, reset after 60 s of uptime) and re-attached;
   SIGHUP/SIGUSR1/SIGUSR2 are forwarded to it; the state goes to status.json;
4. on SIGTERM/SIGINT, on giving up, or on any error: VPP is stopped and the
   snapshot restored.

Everything runs on the main thread: VPP is started with PR_SET_PDEATHSIG,
which follows the thread that started it.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from vppagent.vpp.api_defs import ApiDefinitions, load_definitions
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppError

from . import manager, snapshot, status, vppside
from .errors import StartupError
from .manager import BringUpConfig, Plan
from .status import Status
from .vpp_process import VppProcess, VppStartError

log = logging.getLogger(__name__)

FORWARDED = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


@dataclass
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    stable_after: float = 60.0
    failures: int = 0

    def next_delay(self, uptime: float) -> float:
        if uptime >= self.stable_after:
            self.failures = 0
        delay = min(self.initial * (2 ** self.failures), self.maximum)
        self.failures += 1
        return delay


@dataclass
class Timings:
    vpp_start: float = 0.0
    takeover: float = 0.0  # veth + VPP attach + address/route move, VPP already up


def _connect(cfg: BringUpConfig, vpp: VppProcess, defs: ApiDefinitions) -> VppClient:
    return VppClient(str(vpp.paths.api_socket), name="vppagent-startup", definitions=defs,
                     required=vppside.required_crcs(defs)).connect()


@dataclass
class BringUp:
    """One takeover with its VPP. ``start()`` then ``stop()``; ``supervise()`` in between."""

    cfg: BringUpConfig
    plan: Plan | None = None
    vpp: VppProcess | None = None
    snap: snapshot.Snapshot | None = None
    timings: Timings = field(default_factory=Timings)
    st: Status = field(default_factory=Status)
    defs: ApiDefinitions | None = None

    def _status(self, state: str, **kw: object) -> None:
        self.st.state = state
        for k, v in kw.items():
            setattr(self.st, k, v)
        status.write(Path(self.cfg.state_dir), self.st)

    def start(self) -> "BringUp":
        cfg = self.cfg
        if not cfg.vpp_bin:
            raise StartupError("no VPP binary given (--vpp-bin)")
        if manager.restore(Path(cfg.state_dir), allow_host=cfg.allow_host):
            log.warning("restored a snapshot left by an earlier run", extra={"state_dir": str(cfg.state_dir)})
        self.plan = plan = manager.preflight(cfg)
        try:  # before any change, and outside the measured takeover
            self.defs = load_definitions(cfg.api_dir)
        except VppError as e:
            raise StartupError(f"VPP API definitions: {e}") from e
        self._status("starting", uplink=plan.uplink.link.name, driver=plan.driver)
        self.snap = snap = manager.begin(cfg, plan)
        try:
            t0 = time.monotonic()
            self.vpp = VppProcess(cfg.vpp_bin, workdir=cfg.vpp_workdir, config=plan.startup_conf,
                                  die_with_parent=True)
            self.vpp.start()
            snap.vpp_pid, snap.vpp_workdir = self.vpp.pid or 0, str(cfg.vpp_workdir)
            snapshot.save(Path(cfg.state_dir), snap)
            t1 = time.monotonic()
            self._attach()
            manager.switch_over(cfg, snap)
            t2 = time.monotonic()
        except BaseException as e:
            self._stop_vpp()
            self.snap = None  # rolled back below (or already, by switch_over)
            if isinstance(e, manager.TakeoverError):
                raise
            manager.rollback(cfg, snap, e)
        self.timings = Timings(vpp_start=t1 - t0, takeover=t2 - t1)
        self._status("running", vpp_pid=self.vpp.pid, api_socket=str(self.vpp.paths.api_socket),
                     takeover_seconds=round(self.timings.takeover, 4))
        log.info("uplink taken over", extra={"uplink": plan.uplink.link.name, "driver": plan.driver,
                                             "takeover_s": self.timings.takeover})
        return self

    def _attach(self) -> None:
        assert self.vpp and self.plan
        if self.defs is None:
            self.defs = load_definitions(self.cfg.api_dir)
        with _connect(self.cfg, self.vpp, self.defs) as client:
            vppside.attach(client, self.plan.uplink.link.name, self.plan.uplink.link.mac,
                           self.cfg.names.vpp_if)

    def _stop_vpp(self) -> None:
        if self.vpp is not None:
            self.vpp.stop()

    def stop(self) -> None:
        """Stop VPP and restore the uplink exactly. Safe to call twice."""
        self._status("stopping")
        self._stop_vpp()
        if self.snap is not None:
            manager.restore(Path(self.cfg.state_dir), allow_host=self.cfg.allow_host, snap=self.snap)
            self.snap = None
        self._status("stopped", vpp_pid=0)

    def forward(self, signum: int) -> None:
        if self.vpp is not None and self.vpp.pid and self.vpp.alive():
            os.kill(self.vpp.pid, signum)

    def supervise(self, stop: threading.Event, *, backoff: Backoff | None = None,
                  max_failures: int = 8, poll: float = 0.2) -> None:
        """Until ``stop`` is set: restart VPP when it exits. Returns when stopped or on giving up."""
        backoff = backoff or Backoff()
        assert self.vpp is not None
        started = time.monotonic()
        while not stop.wait(poll):
            if self.vpp.alive():
                continue
            uptime = time.monotonic() - started
            delay = backoff.next_delay(uptime)
            if backoff.failures > max_failures:
                self._status("failed", last_error=f"VPP exited {backoff.failures} times in a row")
                return
            self._status("restarting", restarts=self.st.restarts + 1, vpp_pid=0,
                         last_error=f"VPP exited; restarting in {delay:g}s")
            log.warning("VPP exited, restarting", extra={"delay_s": delay, "restarts": self.st.restarts})
            if stop.wait(delay):
                return
            started = time.monotonic()  # a failed restart counts as no uptime
            try:
                self.vpp.restart()
                assert self.snap is not None
                self.snap.vpp_pid = self.vpp.pid or 0
                snapshot.save(Path(self.cfg.state_dir), self.snap)
                self._attach()
            except (VppStartError, VppError, OSError) as e:
                # A VPP that started but could not be attached is killed, so the
                # next round restarts it instead of watching a useless VPP.
                self.vpp.kill()
                self._status("restarting", last_error=str(e))
                continue
            self._status("running", vpp_pid=self.vpp.pid)


def run(cfg: BringUpConfig) -> int:
    """``python -m startup run``: bring up, supervise until a signal, restore. Returns an exit code."""
    stop = threading.Event()
    bring = BringUp(cfg)

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    def on_forward(signum: int, _frame: FrameType | None) -> None:
        bring.forward(signum)

    old = {s: signal.signal(s, on_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    old.update({s: signal.signal(s, on_forward) for s in FORWARDED})
    try:
        bring.start()
        bring.supervise(stop)
        return 0 if stop.is_set() else 1
    finally:
        try:
            bring.stop()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
