"""Builds the ksvc C core's test programs once per session, into a temp dir.

The core shares the hash table of vpp_plugins/common/kp_hash.c with kpol, compiled
in rather than copied. CI needs gcc (always) and, for the libFuzzer run, clang.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import c_build
from tests.c_build import CFLAGS, SANITIZE  # noqa: F401 - the suite's modules import them from here

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "vpp_plugins" / "ksvc" / "core"
CORE_SOURCES = ["../../common/kp_hash.c", "ks_services.c", "ks_session.c", "ks_packet.c", "ks_wire.c"]


def compile_c(out: Path, sources: list[str], flags: list[str], cc: str = "gcc",
              core: Path = CORE) -> Path:
    return c_build.compile_c(out, core, sources, flags, cc)


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is required to build the ksvc core tests")
    return tmp_path_factory.mktemp("ksvc-build")


def copy_core(dest: Path) -> Path:
    """The core and the shared sources, laid out as in vpp_plugins/ (for tests that plant bugs)."""
    shutil.copytree(CORE, dest / "ksvc" / "core")
    shutil.copytree(CORE.parents[1] / "common", dest / "common")
    return dest / "ksvc" / "core"
