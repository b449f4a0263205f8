"""Fixtures of the emulator suite: an emulator per test, the real vpp_papi client.

The API definitions are VPP 26.06's (../shared/vpp-api/v26.06 next to the
repository, or $VPPAGENT_API_DIR). Sockets live in short temporary
directories (unix socket paths are limited to 107 bytes) that are removed
after each test.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from vpp_papi import VPPApiClient

from testbed import targets
from testbed.emulator import Emulator
from testbed.emulator.apidefs import ApiDefinitions, load_definitions


@pytest.fixture(scope="session")
def api_dir() -> Path:
    return Path(targets.api_dir())


@pytest.fixture(scope="session")
def definitions(api_dir: Path) -> ApiDefinitions:
    return load_definitions(api_dir)


@pytest.fixture
def sock_dir(tmp_short: Path) -> Path:
    return tmp_short


def _make_emulator(sock_dir: Path, definitions: ApiDefinitions, **kw: Any) -> Emulator:
    return Emulator(sock_dir / "api.sock", definitions=definitions, **kw)


@pytest.fixture
def emu_factory(sock_dir: Path, definitions: ApiDefinitions):
    """Start an emulator with options; stopped (and checked) at teardown."""
    started: list[Emulator] = []

    def make(**kw: Any) -> Emulator:
        emu = _make_emulator(sock_dir, definitions, **kw).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()
        assert not os.path.exists(emu.socket_path), "socket file left behind"
        assert emu.handler_errors == [], f"emulator bugs: {emu.handler_errors}"


@pytest.fixture
def emu(emu_factory) -> Emulator:
    return emu_factory()


@pytest.fixture
def connect(api_dir: Path):
    """Connect real vpp_papi clients to an emulator; disconnected at teardown."""
    clients: list[VPPApiClient] = []

    def make(emulator: Emulator, name: str = "test") -> VPPApiClient:
        client = VPPApiClient(apidir=str(api_dir), server_address=emulator.socket_path,
                              use_socket=True, read_timeout=5)
        client.connect(name)
        clients.append(client)
        return client

    yield make
    for client in clients:
        if client.transport.connected:
            client.disconnect()


@pytest.fixture
def vpp(emu: Emulator, connect) -> VPPApiClient:
    return connect(emu)
