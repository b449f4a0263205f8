"""The kpol C core: unit tests, shared vectors, leaks, warnings-as-errors builds."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import CORE_SOURCES, compile_c

SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "halt_on_error=1"}


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def test_unit_tests_and_every_vector_file_pass_under_sanitizers(core_test_bin: Path,
                                                                 vector_files: list[Path]):
    res = run([str(core_test_bin), *map(str, vector_files)], env=SAN_ENV)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 failed" in res.stdout
    oks = [line for line in res.stdout.splitlines() if line.startswith("vectors ") and
           line.endswith(": ok")]
    assert len(oks) == len(vector_files), res.stdout


def test_a_wrong_expectation_is_reported_with_its_line(core_test_bin: Path, tmp_path: Path):
    bad = tmp_path / "bad.txt"
    bad.write_text("policy p ingress=isolated\ncommit p\nattach i p\n"
                   "packet i ingress tcp 10.0.0.1 1 10.0.0.2 80 -> allow 0 rule\n")
    res = run([str(core_test_bin), str(bad)], env=SAN_ENV)
    assert res.returncode == 1
    assert f"{bad}:4:" in res.stderr and "got deny -1 default-deny" in res.stderr


def test_unparsable_vector_line_is_an_error_not_a_pass(core_test_bin: Path, tmp_path: Path):
    bad = tmp_path / "bad.txt"
    bad.write_text("frobnicate everything\n")
    res = run([str(core_test_bin), str(bad)], env=SAN_ENV)
    assert res.returncode == 1 and "does not parse" in res.stderr


def test_core_builds_without_warnings_at_O2_and_as_c11(build_dir: Path):
    compile_c(build_dir / "core.o", ["kpol_core.c"], ["-O2", "-c", "-pedantic"])
    for src in CORE_SOURCES:
        compile_c(build_dir / (Path(src).name + ".o"), [src], ["-O2", "-c"])


def test_core_headers_do_not_include_vpp():
    core = Path(__file__).resolve().parents[2] / "vpp_plugins" / "kpol" / "core"
    for f in core.glob("*.[ch]"):
        assert "<vnet/" not in f.read_text() and "<vlib/" not in f.read_text(), f


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_no_leaks_under_valgrind(build_dir: Path, vector_files: list[Path]):
    plain = compile_c(build_dir / "test_core_plain",
                      [*CORE_SOURCES, "kp_vectors.c", "test_core.c"], ["-O1"])
    res = run(["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
               "--error-exitcode=99", "-q", str(plain), *map(str, vector_files)])
    assert res.returncode == 0, res.stderr[-3000:]
