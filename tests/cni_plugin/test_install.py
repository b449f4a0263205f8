"""``vppagent-cni install`` writes a launcher and a conflist that a runtime can use as they are."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.fake_cni_agent import SPEC_RESULT
from vppagent.cni.install import InstallError, InstallOptions, install

from .conftest import cni_env

ENTRY_POINT = Path(sys.executable).parent / "vppagent-cni"


def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "opt" / "cni" / "bin", tmp_path / "etc" / "cni" / "net.d"


def test_install_writes_an_executable_launcher_and_a_loadable_conflist(tmp_path):
    bin_dir, conf_dir = dirs(tmp_path)
    done = install(InstallOptions(bin_dir=bin_dir, conf_dir=conf_dir,
                                  agent_socket="/run/vppagent/cni.sock", mtu=1450))
    assert done.launcher == bin_dir / "vppagent-cni"
    assert stat.S_IMODE(done.launcher.stat().st_mode) == 0o755
    with open(conf_dir / "10-vppagent.conflist") as f:
        conf = json.load(f)
    assert conf == {"cniVersion": "1.0.0", "name": "vppagent", "plugins": [
        {"type": "vppagent-cni", "agentSocket": "/run/vppagent/cni.sock", "timeoutSeconds": 30,
         "mtu": 1450}]}


def test_launcher_runs_version(tmp_path):
    bin_dir, conf_dir = dirs(tmp_path)
    done = install(InstallOptions(bin_dir=bin_dir, conf_dir=conf_dir))
    r = subprocess.run([str(done.launcher)], env={"CNI_COMMAND": "VERSION", "PATH": "/usr/bin:/bin"},
                       input=b'{"cniVersion": "1.0.0"}', capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "1.0.0" in json.loads(r.stdout)["supportedVersions"]


def test_second_install_replaces_both_files_by_rename(tmp_path):
    bin_dir, conf_dir = dirs(tmp_path)
    first = install(InstallOptions(bin_dir=bin_dir, conf_dir=conf_dir, name="first"))
    inodes = (first.launcher.stat().st_ino, first.conflist.stat().st_ino)
    # A reader holding the old conflist open keeps reading the old, whole file.
    with open(first.conflist) as old:
        second = install(InstallOptions(bin_dir=bin_dir, conf_dir=conf_dir, name="second",
                                        agent_socket="/run/other.sock", timeout_seconds=2.5))
        assert json.load(old)["name"] == "first"
    assert (second.launcher.stat().st_ino, second.conflist.stat().st_ino) != inodes
    conf = json.loads(second.conflist.read_text())
    assert conf["name"] == "second"
    assert conf["plugins"][0]["agentSocket"] == "/run/other.sock"
    assert conf["plugins"][0]["timeoutSeconds"] == 2.5
    # No temp files are left next to them.
    assert sorted(p.name for p in bin_dir.iterdir()) == ["vppagent-cni"]
    assert sorted(p.name for p in conf_dir.iterdir()) == ["10-vppagent.conflist"]


@pytest.mark.parametrize("opts,what", [
    ({"python": "relative/python"}, "--python"),
    ({"python": "/nonexistent/python3"}, "--python"),
    ({"agent_socket": "cni.sock"}, "--agent-socket"),
    ({"mtu": 20}, "--mtu"),
    ({"name": "-x"}, "--name"),
    ({"timeout_seconds": 0}, "--timeout-seconds"),
])
def test_bad_options_write_nothing(tmp_path, opts, what):
    bin_dir, conf_dir = dirs(tmp_path)
    with pytest.raises(InstallError, match=what):
        install(InstallOptions(bin_dir=bin_dir, conf_dir=conf_dir, **opts))
    assert not bin_dir.exists() and not conf_dir.exists()


def test_unwritable_directory_is_an_install_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(InstallError, match="cannot write"):
        install(InstallOptions(bin_dir=blocker / "bin", conf_dir=tmp_path / "conf"))


def _cli() -> list[str]:
    if ENTRY_POINT.exists():
        return [str(ENTRY_POINT)]
    return [sys.executable, "-m", "vppagent.cni.plugin"]


def test_install_subcommand_of_the_executable(tmp_path):
    bin_dir, conf_dir = dirs(tmp_path)
    r = subprocess.run([*_cli(), "install", "--bin-dir", str(bin_dir), "--conf-dir", str(conf_dir),
                        "--name", "k8s-pod-network", "--python", sys.executable],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads((conf_dir / "10-vppagent.conflist").read_text())["name"] == "k8s-pod-network"
    assert os.access(bin_dir / "vppagent-cni", os.X_OK)


def test_install_subcommand_reports_errors_on_stderr(tmp_path):
    bin_dir, conf_dir = dirs(tmp_path)
    r = subprocess.run([*_cli(), "install", "--bin-dir", str(bin_dir), "--conf-dir", str(conf_dir),
                        "--python", "/nonexistent/python"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "--python" in r.stderr and r.stdout == ""


def test_installed_plugin_answers_add_with_the_installed_config(tmp_path, agent):
    """What a runtime does: read the conflist, inject name and cniVersion, exec the launcher."""
    bin_dir, conf_dir = dirs(tmp_path)
    done = install(InstallOptions(bin_dir=bin_dir, conf_dir=conf_dir, agent_socket=agent.socket))
    conflist = json.loads(done.conflist.read_text())
    netconf = {**conflist["plugins"][0], "name": conflist["name"],
               "cniVersion": conflist["cniVersion"]}
    r = subprocess.run([str(bin_dir / netconf["type"])], input=json.dumps(netconf).encode(),
                       env={**cni_env("ADD"), "PATH": "/usr/bin:/bin"}, capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == SPEC_RESULT
    assert json.loads(agent.calls("Add")[0].config)["agentSocket"] == agent.socket
