"""Pre-flight errors, snapshot, restore and its refusals, against the real kernel in namespaces."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest

from startup import linkstate, manager, netns, snapshot
from startup.errors import (
    DriverUnavailableError,
    HostNetnsRefusedError,
    InterfaceMismatchError,
    NoDefaultRouteError,
    SnapshotError,
    SnapshotExistsError,
    TemplateError,
    UnsupportedDriverError,
    UplinkNotFoundError,
    WrongNetnsError,
)
from startup.manager import BringUpConfig

from .conftest import make_topo, remove_topo

pytestmark = pytest.mark.netns


def _cfg(tmp_path, **kw) -> BringUpConfig:
    return BringUpConfig(state_dir=tmp_path / "state", **kw)


def _cap(topo):
    return topo.run(linkstate.capture, topo.uplink)


def test_uplink_is_the_default_routes_interface(topo):
    assert topo.run(linkstate.find_uplink) == topo.uplink
    assert topo.run(linkstate.find_uplink, "lo") == "lo"


def test_missing_configured_uplink_is_an_error(topo):
    with pytest.raises(UplinkNotFoundError, match="'eth9' does not exist"):
        topo.run(linkstate.find_uplink, "eth9")


def test_no_default_route_is_an_error(topo_no_default):
    with pytest.raises(NoDefaultRouteError, match="no default route"):
        topo_no_default.run(linkstate.find_uplink)


@pytest.mark.parametrize("driver,err,msg", [
    ("e1000", UnsupportedDriverError, "unsupported uplink driver 'e1000'"),
    ("dpdk", DriverUnavailableError, "not a PCI device"),
    ("rdma", DriverUnavailableError, "needs mlx5_core"),
])
def test_bad_driver_fails_before_any_change(topo, tmp_path, driver, err, msg):
    before = _cap(topo)
    with pytest.raises(err, match=msg) as e:
        topo.run(manager.preflight, _cfg(tmp_path, driver=driver))
    assert e.value.changed is False
    assert _cap(topo).comparable() == before.comparable()
    assert not (tmp_path / "state" / "snapshot.json").exists()


def test_auto_falls_back_to_af_packet_on_a_veth(topo, tmp_path):
    plan = topo.run(manager.preflight, _cfg(tmp_path, driver="auto"))
    assert plan.driver == "af_packet"
    assert [p.driver for p in plan.probes if not p.ok] == ["rdma", "af_xdp", "vmxnet3", "virtio", "dpdk"]


def test_malformed_template_fails_before_any_change(topo, tmp_path):
    bad = tmp_path / "bad.tmpl"
    bad.write_text("unix {\n  log ${logfile}\n}\n")
    before = _cap(topo)
    with pytest.raises(TemplateError, match="unknown placeholder"):
        topo.run(manager.preflight, _cfg(tmp_path, template=bad))
    assert _cap(topo).comparable() == before.comparable()


def test_missing_api_definitions_fail_before_any_change(topo, tmp_path):
    from startup.errors import StartupError
    from startup.supervisor import BringUp

    before = _cap(topo)
    cfg = _cfg(tmp_path, vpp_bin="/bin/false", api_dir=str(tmp_path / "no-api"))
    with pytest.raises(StartupError, match="VPP API definitions") as e:
        topo.run(lambda: BringUp(cfg).start())
    assert e.value.changed is False
    assert _cap(topo).comparable() == before.comparable()
    assert not snapshot.path(cfg.state_dir).exists()


def test_taking_over_in_the_host_netns_is_refused(tmp_path):
    # Read-only: pre-flight refuses on its first line, before looking at any interface.
    assert netns.is_host()
    with pytest.raises(HostNetnsRefusedError, match="--i-know-this-is-the-host"):
        manager.preflight(_cfg(tmp_path, uplink="lo"))


def test_test_netns_is_not_the_host(topo):
    assert topo.run(netns.is_host) is False


def _take(topo, cfg):
    def go():
        plan = manager.preflight(cfg)
        snap = manager.begin(cfg, plan)
        manager.switch_over(cfg, snap)
        return snap
    return topo.run(go)


def test_takeover_then_restore_is_exact_and_removes_the_snapshot(topo, tmp_path):
    cfg = _cfg(tmp_path)
    before = _cap(topo)
    _take(topo, cfg)
    assert snapshot.path(cfg.state_dir).exists()
    during = _cap(topo)
    assert linkstate.diff(before, during)  # really changed
    assert topo.run(manager.restore, cfg.state_dir) is True
    assert _cap(topo).comparable() == before.comparable()
    assert not snapshot.path(cfg.state_dir).exists()
    assert topo.run(manager.restore, cfg.state_dir) is False


def test_second_takeover_with_leftover_snapshot_is_refused(topo, tmp_path):
    cfg = _cfg(tmp_path)
    _take(topo, cfg)
    with pytest.raises(SnapshotExistsError):
        topo.run(manager.preflight, cfg)
    topo.run(manager.restore, cfg.state_dir)


def test_restore_in_another_netns_is_refused_and_changes_nothing(topo, tmp_path):
    cfg = _cfg(tmp_path)
    _take(topo, cfg)
    other = make_topo()
    try:
        # Same interface names, maybe the same ifindex: only the netns identity tells them apart.
        other_before = other.run(linkstate.capture, other.uplink)
        with pytest.raises(WrongNetnsError, match="nothing was changed"):
            other.run(manager.restore, cfg.state_dir)
        assert other.run(linkstate.capture, other.uplink).comparable() == other_before.comparable()
        assert snapshot.path(cfg.state_dir).exists()
    finally:
        remove_topo(other)
        topo.run(manager.restore, cfg.state_dir)


def test_restore_onto_a_different_interface_is_refused(topo, tmp_path):
    cfg = _cfg(tmp_path)
    before = _cap(topo)
    _take(topo, cfg)
    snap_file = snapshot.path(cfg.state_dir)
    d = json.loads(snap_file.read_text())
    d["uplink"]["link"]["mac"] = "02:00:00:00:00:99"
    forged = tmp_path / "forged"
    snapshot.write_atomic(snapshot.path(forged), d)
    during = _cap(topo)
    with pytest.raises(InterfaceMismatchError, match="mac"):
        topo.run(manager.restore, forged)
    assert _cap(topo).comparable() == during.comparable()
    topo.run(manager.restore, cfg.state_dir)
    assert _cap(topo).comparable() == before.comparable()


def test_unreadable_snapshot_is_an_error_and_kept(tmp_path):
    p = snapshot.path(tmp_path)
    p.write_text("{not json")
    with pytest.raises(SnapshotError, match="unreadable"):
        snapshot.load(tmp_path)
    assert p.exists()


CRASHER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from startup import manager
    cfg = manager.BringUpConfig(state_dir=Path({state!r}))
    snap = manager.begin(cfg, manager.preflight(cfg))
    manager.switch_over(cfg, snap)
    print("taken", flush=True)
    time.sleep(60)
""")


def test_kill_9_mid_takeover_then_cli_restore_is_exact(topo, tmp_path):
    before = _cap(topo)
    state = tmp_path / "state"
    proc = subprocess.Popen(
        ["ip", "netns", "exec", topo.node, sys.executable, "-c",
         CRASHER.format(state=str(state))],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "taken"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert linkstate.diff(before, _cap(topo))
    r = topo.node_exec(sys.executable, "-m", "startup", "--state-dir", str(state), "restore")
    assert r.stdout.strip() == "restored", r.stderr
    assert _cap(topo).comparable() == before.comparable()
    topo.node_exec("ping", "-c", "1", "-W", "2", topo.peer_ip)


def test_vpp_that_fails_to_start_rolls_the_node_back(topo, tmp_path, api_definitions_dir):
    from startup.errors import TakeoverError
    from startup.hostpath import HostPathNames
    from startup.supervisor import BringUp

    before = _cap(topo)
    cfg = _cfg(tmp_path, vpp_bin="/bin/false", api_dir=api_definitions_dir)
    with pytest.raises(TakeoverError, match="rolled back: VPP exited with 1") as e:
        topo.run(lambda: BringUp(cfg).start())
    assert e.value.changed is True
    assert _cap(topo).comparable() == before.comparable()
    assert not snapshot.path(cfg.state_dir).exists()
    from pyroute2 import IPRoute

    from startup import hostpath

    def present():
        with IPRoute() as ipr:
            return hostpath.created_present(ipr, HostPathNames())
    assert topo.run(present) == []
