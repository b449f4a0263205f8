"""Fixtures of the policy-agent suite: one VPP API per test, emulated or real.

``target`` is parametrised: the emulator serving VPP 26.06's definitions plus
our kpol plugin's (vppagent/vpp/plugin_api), and a real VPP with the kpol
plugin loaded (marked real_vpp; needs VPPAGENT_VPP_BIN and
VPPAGENT_KPOL_PLUGIN_DIR, the directory holding kpol_plugin.so). ``stock``
targets lack kpol: the emulator with the stock definitions only, and a real
VPP without the plugin.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import api_dir, real_vpp_reason
from tests.plugin_targets import Target, emulator_target
from vppagent.vpp.api_defs import load_definitions
from vppagent.vpp.client import VppClient

VPP_PLUGIN_DIRS = ("/opt/vpp/lib/x86_64-linux-gnu/vpp_plugins", "/usr/lib/x86_64-linux-gnu/vpp_plugins")


@pytest.fixture
def tmp_short() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="vpa-pol-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _real_target(tmp: Path, with_kpol: bool) -> Iterator[Target]:
    from startup.vpp_process import VppProcess, render_startup_conf, VppPaths

    why = real_vpp_reason()
    if why is None and os.environ.get("VPPAGENT_VPP_SOCKET"):
        why = "these tests start a private VPP with chosen plugins: VPPAGENT_VPP_BIN is needed"
    plugin_dir = os.environ.get("VPPAGENT_KPOL_PLUGIN_DIR", "")
    if why is None and with_kpol and not plugin_dir:
        why = "no kpol plugin: set VPPAGENT_KPOL_PLUGIN_DIR to the directory holding kpol_plugin.so"
    if why is None and with_kpol and not (Path(plugin_dir) / "kpol_plugin.so").is_file():
        why = f"VPPAGENT_KPOL_PLUGIN_DIR={plugin_dir} holds no kpol_plugin.so"
    if why:
        pytest.skip(why)
    workdir = tmp / ("vk" if with_kpol else "vs")
    conf = render_startup_conf(VppPaths(workdir))
    if with_kpol:
        std = next((p for p in VPP_PLUGIN_DIRS if Path(p).is_dir()), VPP_PLUGIN_DIRS[0])
        conf = conf.replace("plugins {\n", f"plugins {{\n  path {std}:{plugin_dir}\n", 1)
    proc = VppProcess(os.environ["VPPAGENT_VPP_BIN"], workdir=workdir, config=conf, die_with_parent=True)
    proc.start()
    vpp = VppClient(str(proc.paths.api_socket), definitions=load_definitions(api_dir()), required={})
    try:
        vpp.connect()
        yield Target("real" if with_kpol else "real-stock", vpp)
    finally:
        vpp.close()
        proc.stop()


@pytest.fixture(params=["emulator", pytest.param("real", marks=pytest.mark.real_vpp)])
def target(request: Any, tmp_short: Path) -> Iterator[Target]:
    gen = (emulator_target if request.param == "emulator" else _real_target)(tmp_short, True)
    yield from gen


@pytest.fixture(params=["emulator-stock", pytest.param("real-stock", marks=pytest.mark.real_vpp)])
def stock(request: Any, tmp_short: Path) -> Iterator[Target]:
    gen = (emulator_target if request.param == "emulator-stock" else _real_target)(tmp_short, False)
    yield from gen


@pytest.fixture
def emu_kpol(tmp_short: Path) -> Iterator[Target]:
    yield from emulator_target(tmp_short, True)


@pytest.fixture
def emu_stock(tmp_short: Path) -> Iterator[Target]:
    yield from emulator_target(tmp_short, False)
