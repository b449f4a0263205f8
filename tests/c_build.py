"""Building our plugins' plain-C cores for their tests (tests/policy_core, tests/ksvc_core)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

CFLAGS = ["-std=c11", "-D_DEFAULT_SOURCE", "-Wall", "-Wextra", "-Werror", "-g"]
SANITIZE = ["-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer"]


def compile_c(out: Path, core: Path, sources: list[str], flags: list[str], cc: str = "gcc") -> Path:
    """``sources`` relative to ``core``; fails the test with the compiler's output."""
    cmd = [cc, *CFLAGS, *flags, *(str(core / s) for s in sources), "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{res.stderr}")
    return out
