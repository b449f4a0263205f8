"""Contract fixtures: the same scenarios against the emulator and a real VPP.

``backend`` is parametrized over {emulator, real_vpp} (``testbed.targets``);
the real VPP runs when VPPAGENT_VPP_BIN (started privately here) or
VPPAGENT_VPP_SOCKET is set, and is skipped with the reason otherwise. ``vpp``
gives a connected client and asserts, after the test, that VPP holds exactly
what it held before.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from testbed import targets
from testbed.targets import Target
from tests.contract import snapshot


@pytest.fixture(scope="session")
def _emulator_backend() -> Iterator[Target]:
    with ExitStack() as stack:
        d = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vppagent-emu-")))
        # Mirror this machine: where VPP could not open /dev/vhost-net, neither does the emulator.
        yield targets.emulator(stack, d, check_errors=False, no_vhost_net=not os.path.exists("/dev/vhost-net"))


@pytest.fixture(scope="session")
def _real_backend() -> Iterator[Target]:
    with ExitStack() as stack:
        yield targets.real_vpp(stack)


@pytest.fixture(params=["emulator", pytest.param("real_vpp", marks=pytest.mark.real_vpp)])
def backend(request) -> Target:
    return request.getfixturevalue("_emulator_backend" if request.param == "emulator" else "_real_backend")


@pytest.fixture
def vpp(backend: Target):
    client = backend.client()
    before = snapshot.take(client)
    try:
        yield client
        after = snapshot.take(client)
    finally:
        client.close()
    leaks = snapshot.diff(before, after)
    assert not leaks, f"test left VPP changed on {backend.name}: " + "; ".join(leaks)
