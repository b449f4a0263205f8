"""VPP APIs to test our plugins' families against: the emulator with or without our plugins'
definitions (vppagent/vpp/plugin_api), as used by the kpol and ksvc suites and the services tier."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import api_dir
from vppagent.emulator import Emulator
from vppagent.emulator.apidefs import load_definitions as emu_definitions
from vppagent.vpp.api_defs import PLUGIN_API_DIR, load_definitions
from vppagent.vpp.client import VppClient


@dataclass
class Target:
    """A VPP API to test against: a connected client, and the emulator when emulated."""

    name: str
    vpp: VppClient
    emu: Emulator | None = None
    workdir: Path | None = None


def api_dir_with_plugins(tmp: Path) -> Path:
    """VPP's definitions plus ours, in one directory (the emulator reads one)."""
    d = tmp / "api"
    shutil.copytree(api_dir(), d, copy_function=os.symlink)
    (d / "ourplugins").mkdir()
    for f in PLUGIN_API_DIR.glob("*.api.json"):
        shutil.copy(f, d / "ourplugins" / f.name)
    return d


def emulator_target(tmp: Path, with_plugins: bool) -> Iterator[Target]:
    """The emulator serving VPP's definitions, plus ours when ``with_plugins``."""
    tmp = tmp / ("ek" if with_plugins else "es")
    tmp.mkdir()
    defs_dir = api_dir_with_plugins(tmp) if with_plugins else Path(api_dir())
    emu = Emulator(tmp / "api.sock", definitions=emu_definitions(defs_dir)).start()
    vpp = VppClient(str(tmp / "api.sock"), definitions=load_definitions(api_dir()), required={})
    try:
        vpp.connect()
        yield Target("emulator" if with_plugins else "emulator-stock", vpp, emu)
        assert not emu.handler_errors, emu.handler_errors
    finally:
        vpp.close()
        emu.stop()
