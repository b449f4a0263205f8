"""Fixtures of the containerd tier: a private containerd with the test image imported,
and ``ctr run --cni`` containers wired to a running agent through the real plugin.

The tier skips, with the reason, when it is not root or containerd, ctr,
runc or busybox-static are missing.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.containerd.daemon import NAMESPACE, PrivateContainerd, missing_tools
from tests.containerd.image import BUSYBOX, IMAGE_REF, oci_archive

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / ".venv" / "bin" / "vppagent-cni"


def tier_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "containerd tier needs root (containerd, runc, network namespaces)"
    missing = missing_tools()
    if missing:
        return f"containerd tier needs {', '.join(missing)} (apt install containerd runc)"
    if not os.path.isfile(BUSYBOX):
        return f"containerd tier builds its image from {BUSYBOX} (apt install busybox-static)"
    if not os.access(PLUGIN, os.X_OK):
        return f"the CNI plugin {PLUGIN} is not installed (pip install -e .)"
    return None


@pytest.fixture(scope="session")
def containerd() -> Iterator[PrivateContainerd]:
    reason = tier_skip_reason()
    if reason:
        pytest.skip(reason)
    daemon = PrivateContainerd.start()
    try:
        daemon.import_image(oci_archive())
        yield daemon
    finally:
        daemon.stop()


@dataclass
class Container:
    """One ``ctr run --rm --cni`` in flight; threads collect its output as it comes."""

    name: str
    cni_id: str           # what ctr passes as CNI_CONTAINERID: "<namespace>-<name>"
    proc: subprocess.Popen
    control: Path         # bind-mounted at /ctl in the container
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _readers: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        for stream, sink in ((self.proc.stdout, self.lines), (self.proc.stderr, self.errors)):
            t = threading.Thread(target=self._collect, args=(stream, sink), daemon=True)
            t.start()
            self._readers.append(t)

    @staticmethod
    def _collect(stream: Any, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))

    def wait_line(self, prefix: str, timeout: float = 30) -> str:
        """The first output line starting with ``prefix``; fails if none comes in ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.lines):
                if line.startswith(prefix):
                    return line
            if self.proc.poll() is not None and not self._readers[0].is_alive():
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        raise AssertionError(f"container {self.name} printed no {prefix!r} line; stdout: {self.lines}; "
                             f"stderr: {self.errors}")

    def release(self, gate: str = "go") -> None:
        (self.control / gate).touch()

    def finish(self, timeout: float = 30) -> tuple[int, list[str], str]:
        """Exit code, all stdout lines and stderr, once ctr has returned (after its DEL)."""
        code = self.proc.wait(timeout)
        for t in self._readers:
            t.join(5)
        return code, self.lines, "\n".join(self.errors)


class Runner:
    """Starts containers on a private containerd; kills any still running at the end."""

    def __init__(self, daemon: PrivateContainerd, workdir: Path) -> None:
        self.daemon = daemon
        self.workdir = workdir
        self.prefix = f"vpa{secrets.token_hex(3)}"
        self.started: list[Container] = []

    def run(self, n: int, script: str) -> Container:
        name = f"{self.prefix}-{n}"
        control = self.workdir / name
        control.mkdir()
        argv = self.daemon.ctr_argv(
            "run", "--rm", "--cni", "--cgroup", "", "--snapshotter", "native",
            "--mount", f"type=bind,src={control},dst=/ctl,options=rbind:rw",
            IMAGE_REF, name, "sh", "-c", script)
        env = {**os.environ, "CONTAINERD_SNAPSHOTTER": "native"}
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        c = Container(name, f"{NAMESPACE}-{name}", proc, control)
        self.started.append(c)
        return c

    def close(self) -> None:
        for c in self.started:
            if c.proc.poll() is None:
                c.release()
                try:
                    c.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.daemon.ctr("tasks", "kill", "-s", "SIGKILL", c.name, check=False)
                    c.proc.wait(15)
        # ctr 1.6 leaves the created task and container behind when the CNI ADD fails.
        tasks = set(self.daemon.ctr("tasks", "ls", "-q").stdout.split())
        containers = set(self.daemon.ctr("containers", "ls", "-q").stdout.split())
        for c in self.started:
            if c.name in tasks:
                self.daemon.ctr("tasks", "rm", "-f", c.name, check=False)
            if c.name in containers:
                self.daemon.ctr("containers", "rm", c.name, check=False)


@pytest.fixture
def runner(containerd: PrivateContainerd, tmp_path: Path) -> Iterator[Runner]:
    r = Runner(containerd, tmp_path)
    try:
        yield r
    finally:
        r.close()


def install_plugin(daemon: PrivateContainerd, agent_socket: str) -> None:
    """The plugin as a node would have it: ``vppagent-cni install`` into the daemon's CNI dirs."""
    done = subprocess.run([str(PLUGIN), "install", "--bin-dir", str(daemon.cni_bin_dir),
                           "--conf-dir", str(daemon.cni_conf_dir), "--agent-socket", agent_socket,
                           "--timeout-seconds", "20"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
