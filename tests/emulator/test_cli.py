"""The vppagent-emulator command: bad input exits 2 with one line, signals work."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vpp_papi import VPPApiClient

CMD = [sys.executable, "-m", "testbed.emulator.cli"]


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CMD, *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


def assert_bad_input(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert needle in lines[0]
    assert lines[0].startswith("vppagent-emulator: ")


def start(sock: Path, api_dir: Path, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen([*CMD, "--socket", str(sock), "--api-dir", str(api_dir), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"emulator did not start: {err}")
        time.sleep(0.02)
    return proc


@pytest.fixture
def running(sock_dir, api_dir):
    procs: list[subprocess.Popen] = []

    def make(*extra: str) -> tuple[subprocess.Popen, Path]:
        sock = sock_dir / "api.sock"
        procs.append(start(sock, api_dir, *extra))
        return procs[-1], sock

    yield make
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_missing_api_dir(sock_dir):
    assert_bad_input(run("--socket", str(sock_dir / "api.sock"), "--api-dir", "/nonexistent/api"),
                     "/nonexistent/api")


def test_api_dir_from_environment(sock_dir):
    proc = run("--socket", str(sock_dir / "api.sock"), env={"VPPAGENT_API_DIR": "/nonexistent/env"})
    assert_bad_input(proc, "/nonexistent/env")


def test_api_dir_without_definitions(sock_dir):
    assert_bad_input(run("--socket", str(sock_dir / "api.sock"), "--api-dir", str(sock_dir)),
                     "memclnt.api.json")


def test_socket_directory_missing(sock_dir, api_dir):
    proc = run("--socket", str(sock_dir / "no" / "api.sock"), "--api-dir", str(api_dir))
    assert_bad_input(proc, "does not exist")


def test_socket_path_not_creatable(sock_dir, api_dir):
    (sock_dir / "file").write_text("")
    proc = run("--socket", str(sock_dir / "file" / "api.sock"), "--api-dir", str(api_dir))
    assert_bad_input(proc, str(sock_dir / "file"))


def test_socket_path_is_a_regular_file(sock_dir, api_dir):
    (sock_dir / "api.sock").write_text("keep me")
    assert_bad_input(run("--socket", str(sock_dir / "api.sock"), "--api-dir", str(api_dir)),
                     "not a socket")
    assert (sock_dir / "api.sock").read_text() == "keep me"


def test_socket_already_served(running, api_dir):
    proc, sock = running()
    assert_bad_input(run("--socket", str(sock), "--api-dir", str(api_dir)), "already served")
    assert proc.poll() is None


def test_stale_socket_file_is_replaced(sock_dir, api_dir, running):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock_dir / "api.sock"))
    stale.close()  # the file stays, nobody listens
    proc, sock = running()
    assert proc.poll() is None


def test_banner_sighup_restart_and_sigterm_cleanup(running, api_dir):
    proc, sock = running("--no-vhost-net")
    client = VPPApiClient(apidir=str(api_dir), server_address=str(sock), use_socket=True,
                          read_timeout=5)
    client.connect("cli-test")
    try:
        assert client.api.create_loopback().sw_if_index == 1
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.settimeout(10)
        raw.connect(str(sock))
        proc.send_signal(signal.SIGHUP)
        assert raw.recv(1) == b""  # disconnected by the restart
        raw.close()
    finally:
        client.disconnect()
    client.connect("after-restart")
    try:
        assert [d.interface_name for d in client.api.sw_interface_dump()] == ["local0"]
        assert client.api.tap_create_v3().retval == -11  # --no-vhost-net
    finally:
        client.disconnect()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.strip() == f"VPP API emulator (test double, no packets flow) listening on {sock}"
    assert not sock.exists()
