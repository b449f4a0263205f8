"""``python -m startup`` in a node netns: typed errors before any change, render, status."""
from __future__ import annotations

import sys

import pytest

from startup import linkstate
from startup.supervisor import Backoff


def _cli(topo, tmp_path, *args: str):
    return topo.node_exec(sys.executable, "-m", "startup", "--state-dir", str(tmp_path / "state"),
                          "--vpp-bin", "/bin/true", *args, check=False)


@pytest.mark.netns
@pytest.mark.parametrize("args,err", [
    (("--driver", "e1000", "run"), "UnsupportedDriverError: unsupported uplink driver 'e1000'"),
    (("--uplink", "eth9", "run"), "UplinkNotFoundError: configured uplink 'eth9' does not exist"),
    (("--workers", "64", "run"), "TemplateError: 64 workers asked for"),
])
def test_run_with_bad_input_exits_2_and_changes_nothing(topo, tmp_path, args, err):
    before = topo.run(linkstate.capture, topo.uplink)
    r = _cli(topo, tmp_path, *args)
    assert r.returncode == 2
    assert err in r.stderr and "(nothing was changed)" in r.stderr
    assert topo.run(linkstate.capture, topo.uplink).comparable() == before.comparable()
    assert not (tmp_path / "state" / "snapshot.json").exists()


@pytest.mark.netns
def test_run_without_default_route_exits_2(topo_no_default, tmp_path):
    r = _cli(topo_no_default, tmp_path, "run")
    assert r.returncode == 2 and "NoDefaultRouteError" in r.stderr


@pytest.mark.netns
def test_render_prints_the_config_and_status_is_empty_before_run(topo, tmp_path):
    r = _cli(topo, tmp_path, "--workers", "1", "render")
    assert r.returncode == 0 and f"socket-name {tmp_path}/state/vpp/api.sock" in r.stdout
    assert "corelist-workers" in r.stdout
    s = _cli(topo, tmp_path, "status")
    assert s.returncode == 1 and s.stdout.strip() == "{}"


def test_backoff_doubles_to_the_cap_and_resets_after_stable_uptime():
    b = Backoff(initial=0.5, maximum=4, stable_after=60)
    assert [b.next_delay(1) for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert b.next_delay(61) == 0.5
