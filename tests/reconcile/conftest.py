"""Fixtures for reconciler tests against the emulator (a test double of VPP, real socket protocol)."""
from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import api_dir
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


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with tempfile.TemporaryDirectory(prefix="vppagent-rec-") as d:
        emu = Emulator(str(Path(d) / "api.sock"), api_dir())
        emu.start()
        try:
            yield emu
        finally:
            emu.stop()
            assert not emu.handler_errors, emu.handler_errors


@pytest.fixture
def connect(emulator: Emulator) -> Iterator:
    """Connect clients to the emulator; all are closed at teardown."""
    clients: list[VppClient] = []

    def make(**kw) -> VppClient:
        c = VppClient(emulator.socket_path, api_dir(), **kw).connect()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()
