"""A private containerd for one test session, and ``ctr`` run next to it.

Owns the daemon's whole footprint: root, state, sockets and config live in
one temp dir, and the daemon runs in its own mount namespace (``unshare
-m``, private propagation) where

* a tmpfs covers ``/run``, because containerd 1.6's shims put their sockets
  under the fixed ``/run/containerd/s`` and runc its state under ``/run``;
* overlays over ``/etc`` and ``/opt`` (upper dirs in the temp dir) make room
  for ``/etc/cni/net.d`` and ``/opt/cni/bin``, the fixed paths ``ctr run
  --cni`` reads (ctr 1.6 has no flags for them), and temp dirs are bind
  mounted there.

``ctr`` joins that namespace with ``nsenter``, so the CNI plugins it runs
see the test's config and binaries while the host's /etc, /opt, /run,
/run/containerd and /var/lib/containerd are never touched. Stopping kills
what is left of tasks and shims of this daemon (found by its socket path)
and removes the temp dir.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

NAMESPACE = "vppagent-test"
SNAPSHOTTER = "native"  # works on any filesystem, and the image is tiny
TOOLS = ("containerd", "containerd-shim-runc-v2", "ctr", "runc", "unshare", "nsenter")

# Plugins that would write outside the temp dir (opt: /opt/containerd) or that the tier
# does not use (CRI brings its own CNI handling; the other snapshotters need special filesystems).
DISABLED_PLUGINS = (
    "io.containerd.grpc.v1.cri",
    "io.containerd.internal.v1.opt",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.tracing.processor.v1.otlp",
)

# Runs as ``sh -c SCRIPT sh WORKDIR`` inside the new mount namespace, then becomes containerd.
_SETUP = r"""
set -eu
w="$1"
mount -n -t tmpfs -o mode=0755 vpa-containerd-run /run
mkdir -p /run/containerd
mount -n -t overlay vpa-etc -o "lowerdir=/etc,upperdir=$w/ovl/etc/up,workdir=$w/ovl/etc/work" /etc
mount -n -t overlay vpa-opt -o "lowerdir=/opt,upperdir=$w/ovl/opt/up,workdir=$w/ovl/opt/work" /opt
mkdir -p /etc/cni/net.d /opt/cni/bin
mount -n --bind "$w/cni/net.d" /etc/cni/net.d
mount -n --bind "$w/cni/bin" /opt/cni/bin
exec containerd --config "$w/config.toml"
"""


class ContainerdError(RuntimeError):
    """The private containerd did not start, or a ctr command failed."""


def _die_with_parent() -> None:
    # A killed test run must not leave its containerd behind (the setting survives exec).
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def _config(w: Path) -> str:
    disabled = ", ".join(f'"{p}"' for p in DISABLED_PLUGINS)
    return (
        "version = 2\n"
        f'root = "{w}/root"\n'
        f'state = "{w}/state"\n'
        f"disabled_plugins = [{disabled}]\n"
        "[grpc]\n"
        f'  address = "{w}/containerd.sock"\n'
        "[ttrpc]\n"
        f'  address = "{w}/containerd.sock.ttrpc"\n'
        "[debug]\n"
        '  address = ""\n'
        '  level = "info"\n'
        "[metrics]\n"
        '  address = ""\n'
    )


@dataclass
class PrivateContainerd:
    workdir: Path
    _proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return str(self.workdir / "containerd.sock")

    @property
    def cni_conf_dir(self) -> Path:
        """Seen by ctr as /etc/cni/net.d."""
        return self.workdir / "cni" / "net.d"

    @property
    def cni_bin_dir(self) -> Path:
        """Seen by ctr as /opt/cni/bin."""
        return self.workdir / "cni" / "bin"

    @property
    def log_path(self) -> Path:
        return self.workdir / "containerd.log"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    def start(cls, timeout: float = 20.0) -> "PrivateContainerd":
        w = Path(tempfile.mkdtemp(prefix="vpa-ctrd-"))
        daemon = cls(w)
        try:
            for d in ("root", "state", "cni/net.d", "cni/bin", "ovl/etc/up", "ovl/etc/work",
                      "ovl/opt/up", "ovl/opt/work", "images"):
                (w / d).mkdir(parents=True)
            (w / "config.toml").write_text(_config(w))
            with open(daemon.log_path, "wb") as out:
                daemon._proc = subprocess.Popen(
                    ["unshare", "--mount", "--propagation", "private", "--",
                     "sh", "-c", _SETUP, "sh", str(w)],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True, preexec_fn=_die_with_parent)
            daemon._wait_ready(timeout)
        except BaseException:
            daemon.stop()
            raise
        log.info("private containerd started", extra={"pid": daemon.pid, "workdir": str(w)})
        return daemon

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise ContainerdError(f"containerd exited with {self._proc.returncode}: {self._log_tail()}")
            if os.path.exists(self.address):
                probe = self.ctr("version", check=False, timeout=5)
                if probe.returncode == 0:
                    return
            if time.monotonic() > deadline:
                raise ContainerdError(f"containerd not ready after {timeout}s: {self._log_tail()}")
            time.sleep(0.1)

    def _log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Remove every task and container of this daemon, stop it, and delete its files."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                self._remove_all()
            except (ContainerdError, subprocess.TimeoutExpired) as e:
                log.warning("cleanup through ctr failed", extra={"error": str(e)})
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for pid in self._shim_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _remove_all(self) -> None:
        tasks = self.ctr("tasks", "ls", "-q", timeout=10).stdout.split()
        for task in tasks:
            self.ctr("tasks", "kill", "-a", "-s", "SIGKILL", task, check=False, timeout=10)
        for task in tasks:
            for _ in range(50):
                if self.ctr("tasks", "rm", "-f", task, check=False, timeout=10).returncode == 0:
                    break
                time.sleep(0.1)
        for container in self.ctr("containers", "ls", "-q", timeout=10).stdout.split():
            self.ctr("containers", "rm", container, check=False, timeout=10)

    def _shim_pids(self) -> list[int]:
        """Shims of this daemon (they outlive it when a task is still running)."""
        pids = []
        needle = self.address.encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"containerd-shim" in cmdline and needle in cmdline:
                pids.append(int(entry))
        return pids

    # -- ctr ------------------------------------------------------------------------------

    def ctr_argv(self, *args: str) -> list[str]:
        return ["nsenter", f"--target={self.pid}", "--mount", "--",
                "ctr", f"--address={self.address}", f"--namespace={NAMESPACE}", *args]

    def ctr(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CONTAINERD_SNAPSHOTTER": SNAPSHOTTER}
        done = subprocess.run(self.ctr_argv(*args), capture_output=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL, text=True)
        if check and done.returncode != 0:
            raise ContainerdError(f"ctr {' '.join(args)} failed ({done.returncode}): "
                                  f"{done.stderr.strip()} {done.stdout.strip()}")
        return done

    def import_image(self, archive: bytes, name: str = "image.tar") -> None:
        path = self.workdir / "images" / name
        path.write_bytes(archive)
        self.ctr("images", "import", "--snapshotter", SNAPSHOTTER, str(path), timeout=60)
