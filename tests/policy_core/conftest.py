"""Builds the kpol C core's test programs once per session, into a temp dir.

CI needs gcc (always) and, for the libFuzzer run, clang; without clang the
fuzz test runs the gcc-built deterministic driver instead.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import c_build
from tests.c_build import CFLAGS, SANITIZE  # noqa: F401 - the suite's modules import them from here

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "vpp_plugins" / "kpol" / "core"
VECTORS = REPO / "vpp_plugins" / "kpol" / "vectors"
CORE_SOURCES = ["../../common/kp_hash.c", "kp_lpm.c", "kpol_core.c", "kp_flow.c", "kp_items.c", "kp_wire.c"]


def compile_c(out: Path, sources: list[str], flags: list[str], cc: str = "gcc",
              core: Path = CORE) -> Path:
    return c_build.compile_c(out, core, sources, flags, cc)


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is required to build the kpol core tests")
    return tmp_path_factory.mktemp("kpol-build")


@pytest.fixture(scope="session")
def core_test_bin(build_dir: Path) -> Path:
    """Unit tests + vector runner, with ASan (and its leak checker) and UBSan."""
    return compile_c(build_dir / "test_core", [*CORE_SOURCES, "kp_vectors.c", "test_core.c"],
                     SANITIZE)


@pytest.fixture(scope="session")
def vector_files() -> list[Path]:
    files = sorted(VECTORS.glob("*.txt"))
    assert files, f"no vector files in {VECTORS}"
    return files


def copy_core(dest: Path) -> Path:
    """The core and the shared sources, laid out as in vpp_plugins/ (for tests that plant bugs)."""
    shutil.copytree(CORE, dest / "kpol" / "core")
    shutil.copytree(CORE.parents[1] / "common", dest / "common")
    return dest / "kpol" / "core"
