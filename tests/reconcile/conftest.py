"""Fixtures for reconciler tests against the emulator (a test double of VPP, real socket protocol)
and, when VPPAGENT_VPP_BIN is set, a real VPP started privately for each test."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from testbed import targets
from testbed.targets import Target
from vppagent.vpp.client import VppClient


@pytest.fixture(params=["emulator", pytest.param("real_vpp", marks=pytest.mark.real_vpp)])
def backend(request, tmp_short: Path) -> Iterator[Target]:
    """The emulator, or a private real VPP 26.06 started fresh for each test (nothing to clean up after)."""
    with ExitStack() as stack:
        if request.param == "emulator":
            yield targets.emulator(stack, tmp_short)
        else:
            yield targets.private_vpp(stack)


@pytest.fixture
def connect(backend: Target) -> Iterator[Callable[..., VppClient]]:
    """Connect clients to the backend; all are closed at teardown."""
    clients: list[VppClient] = []

    def make(**kw) -> VppClient:
        c = backend.client(**kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()
