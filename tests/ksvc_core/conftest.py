"""Builds the ksvc C core's test programs once per session, into a temp dir.

The core shares kpol's hash table (vpp_plugins/kpol/core/kp_hash.c), compiled
in rather than copied. CI needs gcc (always) and, for the libFuzzer run, clang.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "vpp_plugins" / "ksvc" / "core"
CORE_SOURCES = ["../../kpol/core/kp_hash.c", "ks_services.c", "ks_session.c", "ks_packet.c"]
CFLAGS = ["-std=c11", "-D_DEFAULT_SOURCE", "-Wall", "-Wextra", "-Werror", "-g"]
SANITIZE = ["-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer"]


def compile_c(out: Path, sources: list[str], flags: list[str], cc: str = "gcc",
              core: Path = CORE) -> Path:
    cmd = [cc, *CFLAGS, *flags, *(str(core / s) for s in sources), "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{res.stderr}")
    return out


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is required to build the ksvc core tests")
    return tmp_path_factory.mktemp("ksvc-build")
