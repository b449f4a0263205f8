"""Fixtures of the policy-agent suite: one VPP API per test, emulated or real.

``target`` is parametrised: the emulator serving VPP 26.06's definitions plus
our kpol plugin's (vppagent/vpp/plugin_api), and a real VPP with the kpol
plugin loaded (marked real_vpp; needs VPPAGENT_VPP_BIN and root; the plugin
comes from ``testbed.plugins``). ``stock`` targets lack kpol: the emulator
with the stock definitions only, and a real VPP without the plugin.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from testbed import plugins, targets
from testbed.targets import Target


def _target(stack: ExitStack, kind: str, tmp: Path) -> Target:
    client = targets.any_client()
    if kind.startswith("emulator"):
        return targets.emulator(stack, tmp / kind, with_plugins=kind == "emulator", client=client)
    with_kpol = kind == "real"
    return targets.private_vpp(stack, tmp / kind, plugin_dirs=plugins.plugin_dirs("kpol") if with_kpol else (),
                               client=client, name=kind)


@pytest.fixture(params=["emulator", pytest.param("real", marks=pytest.mark.real_vpp)])
def target(request: Any, tmp_short: Path) -> Iterator[Target]:
    with ExitStack() as stack:
        yield _target(stack, request.param, tmp_short)


@pytest.fixture(params=["emulator-stock", pytest.param("real-stock", marks=pytest.mark.real_vpp)])
def stock(request: Any, tmp_short: Path) -> Iterator[Target]:
    with ExitStack() as stack:
        yield _target(stack, request.param, tmp_short)


@pytest.fixture
def emu_kpol(tmp_short: Path) -> Iterator[Target]:
    with ExitStack() as stack:
        yield _target(stack, "emulator", tmp_short)


@pytest.fixture
def emu_stock(tmp_short: Path) -> Iterator[Target]:
    with ExitStack() as stack:
        yield _target(stack, "emulator-stock", tmp_short)
