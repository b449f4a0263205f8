"""The emulator as a separate process, for the demo and the benchmarks.

Owns starting ``vppagent-emulator`` on a socket in a fresh temporary
directory, waiting until it listens, and registering its stop and the
directory's removal on an ExitStack. A separate process keeps the
emulator's work off the client's interpreter (and its GIL), as with VPP.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path


class EmulatorStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class EmulatorProcess:
    socket: str
    proc: subprocess.Popen

    def restart(self) -> None:
        """Simulate a VPP restart: state wiped, clients disconnected (SIGHUP)."""
        self.proc.send_signal(signal.SIGHUP)


def start_emulator_process(stack: ExitStack, api_dir: str | None, *, prefix: str = "vppagent-emu-",
                           timeout: float = 15.0) -> EmulatorProcess:
    """Start the emulator and wait until it listens. Stopped when ``stack`` closes."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    stack.callback(shutil.rmtree, work, True)
    sock = str(work / "api.sock")
    cmd = [sys.executable, "-m", "testbed.emulator.cli", "--socket", sock]
    if api_dir:
        cmd += ["--api-dir", api_dir]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    stack.callback(stop)
    # The emulator prints one "listening" line once its socket accepts clients.
    line = proc.stdout.readline() if proc.stdout else ""
    if "listening" not in line:
        proc.wait(timeout=timeout)
        err = proc.stderr.read().strip() if proc.stderr else ""
        raise EmulatorStartError(f"emulator failed to start: {err or line or 'no output'}")
    return EmulatorProcess(sock, proc)
