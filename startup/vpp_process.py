"""Starting and stopping a private VPP process from a ``vpp`` binary.

Owns: rendering a minimal startup.conf for a VPP that needs no hugepages
and no DPDK (af_packet, memif, tap and the crypto plugins are enough for
pods and tunnels), starting VPP with private socket paths under a work
directory, waiting until its API socket answers, and stopping it. Used by
``vppagent demo`` and by the real-VPP test tier; node bring-up proper
(uplink takeover, host connectivity) is a separate concern.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class VppStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class VppPaths:
    workdir: Path

    @property
    def api_socket(self) -> Path:
        return self.workdir / "api.sock"

    @property
    def stats_socket(self) -> Path:
        return self.workdir / "stats.sock"

    @property
    def cli_socket(self) -> Path:
        return self.workdir / "cli.sock"

    @property
    def log(self) -> Path:
        return self.workdir / "vpp.log"

    @property
    def conf(self) -> Path:
        return self.workdir / "startup.conf"


def render_startup_conf(paths: VppPaths, *, main_core: int | None = None,
                        heap: str = "512M", buffers: int = 16384,
                        disabled_plugins: tuple[str, ...] = ("dpdk_plugin.so",),
                        plugin_paths: tuple[str, ...] = (), workers: int = 0) -> str:
    """A startup.conf for a VPP that runs without hugepages, DPDK or root-wide paths.

    ``plugin_paths`` are extra directories VPP loads plugins from (ours, built
    out of tree), in addition to its own. ``workers`` worker threads poll the
    interfaces besides the main thread, as on a real node.
    """
    cpu_items = (f" main-core {main_core}" if main_core is not None else "") + \
        (f" workers {workers}" if workers else "")
    cpu = f"cpu {{{cpu_items} }}\n" if cpu_items else ""
    plugins = "".join(f"  add-path {d}\n" for d in plugin_paths)
    plugins += "".join(f"  plugin {p} {{ disable }}\n" for p in disabled_plugins)
    prefix = "vppagent" + str(abs(hash(str(paths.workdir))) % 10**8)
    return (
        "unix {\n"
        "  nodaemon\n"
        f"  log {paths.log}\n"
        f"  cli-listen {paths.cli_socket}\n"
        f"  runtime-dir {paths.workdir}\n"
        "}\n"
        f"api-segment {{ prefix {prefix} }}\n"
        f"socksvr {{ socket-name {paths.api_socket} }}\n"
        f"statseg {{ socket-name {paths.stats_socket} page-size 4k size 64M }}\n"
        f"memory {{ main-heap-size {heap} main-heap-page-size 4k }}\n"
        f"buffers {{ buffers-per-numa {buffers} page-size 4k default data-size 2048 }}\n"
        f"{cpu}"
        f"plugins {{\n{plugins}}}\n"
    )


def _pdeathsig() -> None:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class VppProcess:
    """A VPP started from ``binary``, private to ``workdir`` (a temp dir by default)."""

    binary: str
    workdir: Path | None = None
    start_timeout: float = 30.0
    # startup.conf text to use instead of render_startup_conf (node bring-up renders its own).
    config: str | None = None
    # Environment and netns are inherited; die_with_parent asks the kernel to
    # SIGTERM VPP when the starting thread's process dies (PR_SET_PDEATHSIG).
    die_with_parent: bool = False
    # Extra plugin directories and worker threads (render_startup_conf's).
    plugin_paths: tuple[str, ...] = ()
    workers: int = 0
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _owns_workdir: bool = field(default=False, repr=False)

    @property
    def paths(self) -> VppPaths:
        assert self.workdir is not None
        return VppPaths(self.workdir)

    def start(self) -> "VppProcess":
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise VppStartError(f"VPP binary {self.binary} does not exist or is not executable")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="vppagent-vpp-"))
            self._owns_workdir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        paths = self.paths
        paths.conf.write_text(self.config if self.config is not None else render_startup_conf(
            paths, plugin_paths=self.plugin_paths, workers=self.workers))
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(paths.conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "vpp.stderr", "wb"),
            start_new_session=True,
            preexec_fn=_pdeathsig if self.die_with_parent else None,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        sock_path = str(self.paths.api_socket)
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                err = (self.workdir / "vpp.stderr").read_text(errors="replace")[-2000:]
                raise VppStartError(f"VPP exited with {self._proc.returncode} during start: {err.strip()}")
            if os.path.exists(sock_path):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(sock_path)
                    return
                except OSError:
                    pass
                finally:
                    s.close()
            time.sleep(0.05)
        self.stop()
        raise VppStartError(f"VPP did not open {sock_path} within {self.start_timeout:g}s")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """Crash VPP (SIGKILL), as a test of restart handling."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(timeout=10)

    def restart(self) -> None:
        """Kill VPP and start it again on the same sockets: a crash and a supervisor restart."""
        self.kill()
        self._proc = None
        self.start()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._owns_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> "VppProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
