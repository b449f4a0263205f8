"""Takeover with a real VPP: traffic crosses VPP, stop and kill -9 restore exactly, VPP restarts.

Runs ``python -m startup run`` inside the node netns, as an operator would.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from startup import linkstate, status
from testbed.targets import api_dir, real_vpp_reason

from .conftest import REPO_ROOT

pytestmark = [pytest.mark.netns, pytest.mark.real_vpp]

_reason = real_vpp_reason() or (None if os.environ.get("VPPAGENT_VPP_BIN") else
                                "needs VPPAGENT_VPP_BIN: bring-up starts its own VPP")
if _reason:
    pytestmark.append(pytest.mark.skip(reason=_reason))


def _start(topo, state: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen(
        ["ip", "netns", "exec", topo.node, sys.executable, "-m", "startup", "--state-dir", str(state),
         "--vpp-bin", os.environ["VPPAGENT_VPP_BIN"], "--api-dir", api_dir(), "run"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(REPO_ROOT))
    _wait_state(state, "running", proc)
    return proc


def _wait_state(state: Path, want: str, proc: subprocess.Popen | None = None, timeout: float = 40,
                pid_not: int = 0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = status.read(state) or {}
        if st.get("state") == want and st.get("vpp_pid") != pid_not:
            return st
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"manager exited {proc.returncode}: {proc.stdout.read()}")
        time.sleep(0.1)
    raise AssertionError(f"state never became {want}: {status.read(state)}")


def _counters(state: Path) -> dict[str, tuple[int, int]]:
    from vppagent.vpp.stats import StatsReader

    with StatsReader(str(state / "vpp" / "stats.sock")) as s:
        return {c.name: (c.rx_packets, c.tx_packets) for c in s.interface_counters()}


def _tcp_hello(topo) -> str:
    srv = subprocess.Popen(["ip", "netns", "exec", topo.peer, sys.executable, "-c",
                            "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                            f"s.bind(('{topo.peer_ip}',7777));s.listen();c,_=s.accept();c.sendall(b'hello');c.close()"])
    try:
        cli = ("import socket,time\nfor i in range(100):\n try:\n  s=socket.create_connection(('%s',7777),timeout=3);break\n"
               " except ConnectionRefusedError: time.sleep(0.05)\nprint(s.recv(10).decode())" % topo.peer_ip)
        return topo.node_exec(sys.executable, "-c", cli, check=False).stdout.strip()
    finally:
        srv.kill()
        srv.wait()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_node_reaches_peer_through_vpp_and_stop_restores_exactly(topo, tmp_path):
    before = topo.run(linkstate.capture, topo.uplink)
    state = tmp_path / "state"
    proc = _start(topo, state)
    try:
        c0 = _counters(state)
        r = topo.node_exec("ping", "-c", "3", "-i", "0.2", "-W", "2", topo.peer_ip, check=False)
        assert r.returncode == 0 and "DUP!" not in r.stdout, r.stdout
        r6 = topo.node_exec("ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", topo.peer_ip6, check=False)
        assert r6.returncode == 0, r6.stdout
        assert _tcp_hello(topo) == "hello"
        c1 = _counters(state)
        up, host = "host-" + topo.uplink, "host-vpphost0-vpp"
        # Traffic really crossed VPP, in both directions on both interfaces.
        assert c1[up][0] - c0[up][0] >= 5 and c1[up][1] - c0[up][1] >= 5
        assert c1[host][0] - c0[host][0] >= 5 and c1[host][1] - c0[host][1] >= 5
        st = status.read(state)
        assert st["state"] == "running" and st["uplink"] == topo.uplink and st["takeover_seconds"] > 0
    finally:
        _stop(proc)
    assert proc.returncode == 0, proc.stdout.read()
    assert topo.run(linkstate.capture, topo.uplink).comparable() == before.comparable()
    assert status.read(state)["state"] == "stopped"
    assert not (state / "snapshot.json").exists()
    topo.node_exec("ping", "-c", "1", "-W", "2", topo.peer_ip)


def test_kill_9_of_the_manager_then_restore_is_exact(topo, tmp_path):
    before = topo.run(linkstate.capture, topo.uplink)
    state = tmp_path / "state"
    proc = _start(topo, state)
    vpp_pid = status.read(state)["vpp_pid"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert linkstate.diff(before, topo.run(linkstate.capture, topo.uplink))
    r = topo.node_exec(sys.executable, "-m", "startup", "--state-dir", str(state), "restore")
    assert r.stdout.strip() == "restored", r.stderr
    assert topo.run(linkstate.capture, topo.uplink).comparable() == before.comparable()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{vpp_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{vpp_pid}").exists()
    topo.node_exec("ping", "-c", "1", "-W", "2", topo.peer_ip)


def test_vpp_crash_is_restarted_and_reattached(topo, tmp_path):
    state = tmp_path / "state"
    proc = _start(topo, state)
    try:
        old = status.read(state)["vpp_pid"]
        os.kill(old, signal.SIGKILL)
        st = _wait_state(state, "running", proc, pid_not=old)
        assert st["restarts"] == 1 and st["vpp_pid"] != old
        r = topo.node_exec("ping", "-c", "2", "-i", "0.2", "-W", "2", topo.peer_ip, check=False)
        assert r.returncode == 0, r.stdout
    finally:
        _stop(proc)
    assert proc.returncode == 0


def test_sighup_is_forwarded_to_vpp(topo, tmp_path):
    """VPP exits on SIGHUP: a forwarded SIGHUP shows as a restart of the new VPP."""
    state = tmp_path / "state"
    proc = _start(topo, state)
    try:
        old = status.read(state)["vpp_pid"]
        proc.send_signal(signal.SIGHUP)
        st = _wait_state(state, "running", proc, pid_not=old)
        assert st["restarts"] == 1
    finally:
        _stop(proc)


def test_supervisor_gives_up_when_vpp_cannot_restart_and_restores(topo, tmp_path):
    import threading

    from startup.manager import BringUpConfig
    from startup.supervisor import Backoff, BringUp

    before = topo.run(linkstate.capture, topo.uplink)
    link = tmp_path / "bin" / "vpp"
    link.parent.mkdir()
    link.symlink_to(os.environ["VPPAGENT_VPP_BIN"])
    cfg = BringUpConfig(state_dir=tmp_path / "state", vpp_bin=str(link), api_dir=api_dir())

    def scenario():
        b = BringUp(cfg).start()
        try:
            link.unlink()  # the binary is gone: every restart fails
            os.kill(b.vpp.pid, signal.SIGKILL)
            b.supervise(threading.Event(), backoff=Backoff(initial=0.05, maximum=0.1), max_failures=3,
                        poll=0.05)
            return status.read(cfg.state_dir)
        finally:
            b.stop()

    st = topo.run(scenario)
    assert st["state"] == "failed" and "exited 4 times" in st["last_error"]
    assert topo.run(linkstate.capture, topo.uplink).comparable() == before.comparable()
    assert status.read(cfg.state_dir)["state"] == "stopped"
