"""Switches of the perf runner tests: root for netns, a real VPP for the end-to-end run."""
from __future__ import annotations

import os
import subprocess

import pytest

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, veth)")


def perf_netns() -> set[str]:
    """Netns the runner's environments name (kernel baseline ``vpa-pk*``, pods ``vpa-t*``)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith("vpa-pk")}
