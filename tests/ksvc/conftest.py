"""Fixtures of the ksvc suite: one VPP API per test, emulated or real.

``target`` is parametrised: the emulator serving VPP 26.06's definitions plus
our plugins' (vppagent/vpp/plugin_api), and a real VPP with the ksvc plugin
loaded (marked real_vpp; needs VPPAGENT_VPP_BIN and root; the plugin comes
from VPPAGENT_KSVC_PLUGIN_DIR, the directory holding ksvc_plugin.so, or is
built out of tree once per session with cmake against the VPP's prefix, kpol
included: the feature-order test wants both).
``stock`` is the emulator without our plugins' definitions.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import api_dir, real_vpp_reason
from tests.plugin_targets import Target, emulator_target
from vppagent.vpp.api_defs import load_definitions
from vppagent.vpp.client import VppClient

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tmp_short() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="vpa-ksvc-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _real_skip_reason() -> str | None:
    why = real_vpp_reason()
    if why is None and os.environ.get("VPPAGENT_VPP_SOCKET") and not os.environ.get("VPPAGENT_VPP_BIN"):
        why = "these tests start a private VPP with the ksvc plugin: VPPAGENT_VPP_BIN is needed"
    return why


@pytest.fixture(scope="session")
def ksvc_plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory holding ksvc_plugin.so: $VPPAGENT_KSVC_PLUGIN_DIR, or a fresh build."""
    why = _real_skip_reason()
    if why:
        pytest.skip(why)
    env = os.environ.get("VPPAGENT_KSVC_PLUGIN_DIR")
    if env:
        if not (Path(env) / "ksvc_plugin.so").is_file():
            pytest.skip(f"VPPAGENT_KSVC_PLUGIN_DIR={env} holds no ksvc_plugin.so")
        return Path(env)
    prefix = Path(os.environ["VPPAGENT_VPP_BIN"]).resolve().parents[1]
    if not list(prefix.glob("lib*/cmake/vpp/VPPConfig.cmake")) + list(prefix.glob("lib/*/cmake/vpp/VPPConfig.cmake")):
        pytest.skip(f"no VPP cmake package under {prefix}: set VPPAGENT_KSVC_PLUGIN_DIR")
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed: set VPPAGENT_KSVC_PLUGIN_DIR")
    build = tmp_path_factory.mktemp("ksvc-plugin")
    for cmd in (["cmake", "-S", str(REPO / "vpp_plugins"), "-B", str(build), f"-DCMAKE_PREFIX_PATH={prefix}",
                 "-DCMAKE_BUILD_TYPE=Release"],
                ["cmake", "--build", str(build), "-j2"]):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, f"{' '.join(cmd)}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    so = list(build.rglob("ksvc_plugin.so"))
    assert so, f"the build produced no ksvc_plugin.so in {build}"
    return so[0].parent


def real_target(tmp: Path, plugin_dir: Path, extra_conf: str = "") -> Iterator[Target]:
    from startup.vpp_process import VppPaths, VppProcess, render_startup_conf

    workdir = tmp / "vk"
    conf = render_startup_conf(VppPaths(workdir), plugin_paths=(str(plugin_dir),)) + extra_conf
    proc = VppProcess(os.environ["VPPAGENT_VPP_BIN"], workdir=workdir, config=conf, die_with_parent=True)
    proc.start()
    vpp = VppClient(str(proc.paths.api_socket), definitions=load_definitions(api_dir()), required={})
    try:
        vpp.connect()
        yield Target("real", vpp, workdir=workdir)
    finally:
        vpp.close()
        proc.stop()


@pytest.fixture(params=["emulator", pytest.param("real", marks=pytest.mark.real_vpp)])
def target(request: Any, tmp_short: Path) -> Iterator[Target]:
    if request.param == "emulator":
        yield from emulator_target(tmp_short, True)
    else:
        yield from real_target(tmp_short, request.getfixturevalue("ksvc_plugin_dir"))


@pytest.fixture
def stock(tmp_short: Path) -> Iterator[Target]:
    yield from emulator_target(tmp_short, False)
