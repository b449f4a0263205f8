"""Bad input at connect: one clear error, never a traceback."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from testbed.targets import api_dir
from vppagent.vpp import catalog
from vppagent.vpp.api_defs import load_definitions
from vppagent.vpp.client import VppClient
from vppagent.vpp.crcs import PINNED_CRCS
from vppagent.vpp.errors import ApiDefinitionsError, VppConnectError, VppDisconnectedError


def test_missing_socket_path(tmp_path):
    with pytest.raises(VppConnectError, match="does not exist"):
        VppClient(str(tmp_path / "nope.sock"), api_dir()).connect()


def test_socket_file_with_nothing_listening(tmp_path):
    path = str(tmp_path / "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # the file stays, nobody listens: VPP crashed
    with pytest.raises(VppConnectError, match="nothing is listening"):
        VppClient(path, api_dir()).connect()


def test_a_server_that_is_not_vpp(tmp_path):
    path = str(tmp_path / "other.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    try:
        client = VppClient(path, api_dir(), timeout=1)
        import threading

        def hang_up():
            conn, _ = srv.accept()
            conn.recv(1024)
            conn.close()

        t = threading.Thread(target=hang_up)
        t.start()
        with pytest.raises(VppDisconnectedError, match="handshake"):
            client.connect()
        t.join()
    finally:
        srv.close()


def test_missing_api_directory(tmp_path):
    with pytest.raises(ApiDefinitionsError, match="does not exist"):
        VppClient("/run/vpp/api.sock", str(tmp_path / "nope"))


def test_empty_api_directory(tmp_path):
    with pytest.raises(ApiDefinitionsError, match="no \\*.api.json"):
        load_definitions(tmp_path)


@pytest.mark.parametrize("args, expect", [
    (["--socket", "/nonexistent/api.sock"], "does not exist"),
    (["--socket", "/run/x.sock", "--api-dir", "/nonexistent"], "does not exist"),
])
def test_cli_check_gives_one_line_and_nonzero_exit(args, expect):
    r = subprocess.run([sys.executable, "-m", "vppagent.cli", "check", *args, "--api-dir", api_dir()]
                       if "--api-dir" not in args else [sys.executable, "-m", "vppagent.cli", "check", *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert expect in lines[0] and "Traceback" not in r.stderr


def test_pinned_crcs_cover_exactly_what_the_families_use():
    defs = load_definitions(api_dir())
    assert catalog.required_messages(defs, catalog.requests()) == PINNED_CRCS
