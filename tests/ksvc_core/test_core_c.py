"""The ksvc C core: unit tests under sanitizers, leaks, warnings-as-errors builds."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import CORE, CORE_SOURCES, SANITIZE, compile_c, copy_core

SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "halt_on_error=1"}


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def test_unit_tests_pass_under_sanitizers(build_dir: Path):
    exe = compile_c(build_dir / "test_core", [*CORE_SOURCES, "test_core.c"], SANITIZE)
    res = run([str(exe)], env=SAN_ENV)
    assert res.returncode == 0, res.stdout + res.stderr
    passed, failed = res.stdout.split(" passed, ")
    assert failed.startswith("0 failed") and int(passed) > 300, res.stdout


def test_a_failing_check_is_reported(build_dir: Path, tmp_path: Path):
    """The runner's verdict is real: a core that forgets affinity fails its checks."""
    core = copy_core(tmp_path)
    src = (core / "ks_session.c").read_text()
    needle = "if (!aff_expired(a, now) && ks_service_has"
    assert needle in src
    (core / "ks_session.c").write_text(src.replace(needle, "if (0 && ks_service_has"))
    exe = compile_c(tmp_path / "bad", [*CORE_SOURCES, "test_core.c"], ["-O1"], core=core)
    res = run([str(exe)])
    assert res.returncode == 1 and "CHECK failed" in res.stderr


def test_core_builds_without_warnings_at_O2_and_pedantic(build_dir: Path):
    for src in CORE_SOURCES[1:]:
        compile_c(build_dir / (Path(src).name + ".o"), [src], ["-O2", "-c", "-pedantic"])


def test_core_does_not_include_vpp():
    for f in CORE.glob("*.[ch]"):
        text = f.read_text()
        assert "<vnet/" not in text and "<vlib/" not in text and "<vppinfra/" not in text, f


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_no_leaks_under_valgrind(build_dir: Path):
    plain = compile_c(build_dir / "test_core_plain", [*CORE_SOURCES, "test_core.c"], ["-O1"])
    res = run(["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
               "--error-exitcode=99", "-q", str(plain)])
    assert res.returncode == 0, res.stderr[-3000:]
