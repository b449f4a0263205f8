"""Contract fixtures: the same scenarios against the emulator and a real VPP.

``backend`` is parametrized over {emulator, real_vpp}; the real VPP runs when
VPPAGENT_VPP_BIN (started privately here) or VPPAGENT_VPP_SOCKET is set, and
is skipped with the reason otherwise. ``vpp`` gives a connected client and
asserts, after the test, that VPP holds exactly what it held before.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from startup.vpp_process import VppProcess
from tests.conftest import api_dir, real_vpp_reason
from tests.contract import snapshot
from vppagent.emulator.server import Emulator
from vppagent.vpp.client import VppClient


@dataclass
class Backend:
    name: str
    socket: str
    api_dir: str
    restart: Callable[[], None]
    real: bool

    def client(self, **kw) -> VppClient:
        return VppClient(self.socket, self.api_dir, **kw).connect()


@pytest.fixture(scope="session")
def _emulator_backend():
    adir = api_dir()
    with tempfile.TemporaryDirectory(prefix="vppagent-emu-") as d:
        # Mirror this machine: where VPP could not open /dev/vhost-net, neither does the emulator.
        emu = Emulator(str(Path(d) / "api.sock"), adir,
                       no_vhost_net=not os.path.exists("/dev/vhost-net"))
        emu.start()
        try:
            yield Backend("emulator", emu.socket_path, adir, emu.restart, False)
        finally:
            emu.stop()


@pytest.fixture(scope="session")
def _real_backend():
    reason = real_vpp_reason()
    if reason:
        pytest.skip(reason)
    adir = api_dir()
    sock = os.environ.get("VPPAGENT_VPP_SOCKET")
    if sock:
        def cannot_restart() -> None:
            pytest.skip("cannot restart a VPP this test suite did not start")
        yield Backend("real_vpp", sock, adir, cannot_restart, True)
        return
    with VppProcess(os.environ["VPPAGENT_VPP_BIN"]) as proc:
        yield Backend("real_vpp", str(proc.paths.api_socket), adir, proc.restart, True)


@pytest.fixture(params=["emulator", pytest.param("real_vpp", marks=pytest.mark.real_vpp)])
def backend(request) -> Backend:
    return request.getfixturevalue("_emulator_backend" if request.param == "emulator" else "_real_backend")


@pytest.fixture
def vpp(backend: Backend):
    client = backend.client()
    before = snapshot.take(client)
    try:
        yield client
        after = snapshot.take(client)
    finally:
        client.close()
    leaks = snapshot.diff(before, after)
    assert not leaks, f"test left VPP changed on {backend.name}: " + "; ".join(leaks)
