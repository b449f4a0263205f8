"""Fixtures for reconciler tests against the emulator (a test double of VPP, real socket protocol)
and, when VPPAGENT_VPP_BIN is set, a real VPP started privately for each test."""
from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from startup.vpp_process import VppProcess
from tests.conftest import api_dir, real_vpp_reason
from vppagent.emulator.server import Emulator
from vppagent.vpp.client import VppClient

# Requests that only read VPP: everything else counts as a mutating call.
READ_ONLY = frozenset({"control_ping", "show_version", "cnat_get_snat_addresses", "sw_interface_get_table",
                       "ip_route_lookup", "sockclnt_create", "sockclnt_delete"})


def mutating(calls: Counter[str], since: Counter[str] | None = None) -> dict[str, int]:
    """Mutating requests in ``calls`` (minus ``since``), by message name."""
    since = since or Counter()
    return {name: n - since.get(name, 0) for name, n in calls.items()
            if n - since.get(name, 0) and not name.endswith("_dump") and name not in READ_ONLY}


@dataclass
class Backend:
    """A VPP to reconcile against: the emulator, or a private real VPP 26.06."""

    name: str
    socket: str
    restart: Callable[[], None]


@pytest.fixture(params=["emulator", pytest.param("real_vpp", marks=pytest.mark.real_vpp)])
def backend(request) -> Iterator[Backend]:
    if request.param == "emulator":
        with tempfile.TemporaryDirectory(prefix="vppagent-rec-") as d:
            emu = Emulator(str(Path(d) / "api.sock"), api_dir())
            emu.start()
            try:
                yield Backend("emulator", emu.socket_path, emu.restart)
            finally:
                emu.stop()
                assert not emu.handler_errors, emu.handler_errors
        return
    reason = real_vpp_reason()
    if reason is not None:
        pytest.skip(reason)
    if not os.environ.get("VPPAGENT_VPP_BIN"):
        pytest.skip("needs VPPAGENT_VPP_BIN: these tests start (and restart) a fresh VPP each")
    with VppProcess(os.environ["VPPAGENT_VPP_BIN"]) as proc:  # fresh: nothing to clean up after
        yield Backend("real_vpp", str(proc.paths.api_socket), proc.restart)


@pytest.fixture
def connect(backend: Backend) -> Iterator[Callable[..., VppClient]]:
    """Connect clients to the backend; all are closed at teardown."""
    clients: list[VppClient] = []

    def make(**kw) -> VppClient:
        c = VppClient(backend.socket, api_dir(), **kw).connect()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()
