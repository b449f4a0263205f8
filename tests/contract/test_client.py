"""The connection itself: compatibility check, events, restart detection, pipelining."""
from __future__ import annotations

import json
import queue
import shutil
import time
from pathlib import Path

import pytest

from vppagent.vpp import interfaces
from vppagent.vpp.client import Connected, Disconnected, VppClient
from vppagent.vpp.crcs import PINNED_CRCS
from vppagent.vpp.errors import IncompatibleVppError, VppDisconnectedError


def test_connect_reports_vpp_and_counts_calls(backend):
    with backend.client() as vpp:
        assert vpp.vpe_pid > 0
        assert vpp.call("show_version").version
        before = vpp.calls["control_ping"]
        vpp.call("control_ping")
        assert vpp.calls["control_ping"] == before + 1


def test_every_pinned_message_is_offered_by_vpp(backend):
    with backend.client() as vpp:
        missing = [m for m in PINNED_CRCS if not vpp.has_message(m)]
        assert missing == []


def test_a_message_with_another_crc_refuses_the_connection(backend):
    required = dict(PINNED_CRCS, sw_interface_set_flags="0xdeadbeef")
    with pytest.raises(IncompatibleVppError) as e:
        VppClient(backend.socket, backend.api_dir, required=required).connect()
    assert [m.message for m in e.value.mismatches] == ["sw_interface_set_flags"]
    assert "0xdeadbeef" in str(e.value)


def test_definitions_of_another_version_are_refused(backend, tmp_path):
    src = Path(backend.api_dir)
    for f in src.rglob("*.api.json"):
        dst = tmp_path / f.relative_to(src)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dst)
    doc = json.loads((tmp_path / "core" / "interface.api.json").read_text())
    for m in doc["messages"]:
        if m[0] == "create_loopback":
            m[-1]["crc"] = "0x12345678"
    (tmp_path / "core" / "interface.api.json").write_text(json.dumps(doc))
    with pytest.raises(IncompatibleVppError) as e:
        VppClient(backend.socket, str(tmp_path)).connect()
    assert "API definitions" in e.value.where
    assert [m.message for m in e.value.mismatches] == ["create_loopback"]


def test_vpp_restart_is_detected_and_reconnect_finds_it_empty(backend):
    events: queue.Queue = queue.Queue()
    vpp = VppClient(backend.socket, backend.api_dir, auto_reconnect=True)
    vpp.subscribe(events.put)
    vpp.connect()
    try:
        assert isinstance(events.get(timeout=5), Connected)
        loop = interfaces.create_loopback(vpp)
        backend.restart()
        ev = events.get(timeout=30)
        assert isinstance(ev, Disconnected)
        ev = events.get(timeout=60)
        assert isinstance(ev, Connected) and ev.reconnect
        assert interfaces.get(vpp, loop) is None
    finally:
        vpp.close()


def test_calls_on_a_lost_connection_fail_clearly(backend):
    vpp = backend.client()
    backend.restart()
    try:
        with pytest.raises(VppDisconnectedError):
            for _ in range(100):  # the loss is noticed by the reader, asynchronously
                vpp.call("control_ping")
                time.sleep(0.05)
    finally:
        vpp.close()

