"""``vppagent run`` as a process of its own, as on a node: its log lines, its health port, signals.

For the tiers that kill the agent (kill -9 in the middle of something) or read
it from the outside (``/healthz``, ``/readyz``, ``/metrics``).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from testbed.targets import REPO
from testbed.wait import wait_for


def subprocess_env(**over: str) -> dict[str, str]:
    """The test's environment without its ``VPPAGENT_*`` settings, with ``over`` and this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPPAGENT_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(over)
    return env


class AgentProcess:
    def __init__(self, env: dict[str, str]):
        self.port = int(env["VPPAGENT_HEALTH_PORT"])
        self.proc = subprocess.Popen([sys.executable, "-m", "vppagent.cli", "run"], env=subprocess_env(**env),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self.seen:
                self.lines.append(line)
                self.seen.notify_all()

    def wait_line(self, fragment: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        with self.seen:
            i = 0
            while True:
                for line in self.lines[i:]:
                    if fragment in line:
                        return line
                i = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no log line with {fragment!r}; last lines: {self.lines[-5:]}")
                self.seen.wait(left)

    def wait_ready(self, timeout: float = 30.0) -> None:
        try:
            wait_for(lambda: self.status("/readyz") == 200, timeout, "the agent to be ready")
        except AssertionError as e:
            raise AssertionError(f"{e}; last log lines: {''.join(self.lines[-30:])}") from None

    def status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return 0

    def kill(self, sig: int) -> int:
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=15)
        self._reader.join(timeout=5)
        return rc


__all__ = ["AgentProcess", "subprocess_env"]
