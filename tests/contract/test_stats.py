"""The stats segment, read through shared memory (real VPP only: the emulator has none)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from vppagent.vpp import interfaces
from vppagent.vpp.errors import VppConnectError
from vppagent.vpp.stats import StatsReader

pytestmark = pytest.mark.real_vpp


@pytest.fixture
def stats_socket(_real_backend):
    path = Path(_real_backend.socket).with_name("stats.sock")
    if os.environ.get("VPPAGENT_VPP_SOCKET") and not path.exists():
        pytest.skip("stats socket of the running VPP is not beside its API socket")
    return str(path)


def test_interface_counters_name_every_interface(_real_backend, stats_socket):
    with _real_backend.client() as vpp:
        idx = interfaces.create_loopback(vpp)
        try:
            name = interfaces.get(vpp, idx).name
            with StatsReader(stats_socket) as st:
                counters = {c.sw_if_index: c for c in st.interface_counters()}
            assert counters[idx].name == name
            assert counters[0].name == "local0"
            assert counters[idx].rx_packets == 0
        finally:
            interfaces.delete_loopback(vpp, idx)


def test_missing_stats_socket_is_a_clear_error(tmp_path):
    with pytest.raises(VppConnectError, match="does not exist"):
        StatsReader(str(tmp_path / "stats.sock")).connect()
