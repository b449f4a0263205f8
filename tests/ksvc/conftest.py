"""Fixtures of the ksvc suite: one VPP API per test, emulated or real.

``target`` is parametrised: the emulator serving VPP 26.06's definitions plus
our plugins' (vppagent/vpp/plugin_api), and a real VPP with the ksvc plugin
loaded (marked real_vpp; needs VPPAGENT_VPP_BIN and root; the plugins come
from ``testbed.plugins``, kpol included: the feature-order test wants both).
``stock`` is the emulator without our plugins' definitions.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from testbed import plugins, targets
from testbed.targets import Target


@pytest.fixture(scope="session")
def ksvc_plugin_dirs() -> tuple[Path, ...]:
    """The directories holding ksvc_plugin.so and kpol_plugin.so."""
    return plugins.plugin_dirs("ksvc", "kpol")


def real_target(stack: ExitStack, workdir: Path, plugin_dirs: tuple[Path, ...], extra_conf: str = "",
                workers: int | None = None) -> Target:
    """A private real VPP with our plugins, a client connected (``target.vpp``)."""
    return targets.private_vpp(stack, workdir, plugin_dirs=plugin_dirs, extra_conf=extra_conf, workers=workers,
                               client=targets.any_client())


@pytest.fixture(params=["emulator", pytest.param("real", marks=pytest.mark.real_vpp)])
def target(request: Any, tmp_short: Path) -> Iterator[Target]:
    with ExitStack() as stack:
        if request.param == "emulator":
            yield targets.emulator(stack, tmp_short / "ek", with_plugins=True, client=targets.any_client())
        else:
            yield real_target(stack, tmp_short / "vk", request.getfixturevalue("ksvc_plugin_dirs"))


@pytest.fixture
def stock(tmp_short: Path) -> Iterator[Target]:
    with ExitStack() as stack:
        yield targets.emulator(stack, tmp_short / "es", client=targets.any_client())
