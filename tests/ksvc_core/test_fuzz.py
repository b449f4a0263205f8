"""Short fuzz runs of the ksvc core against its model (see core/fuzz.c): always the
gcc-built deterministic driver, and libFuzzer when clang is installed."""
from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import CORE_SOURCES, SANITIZE, compile_c, copy_core

FUZZ_SECONDS = 60  # per target, in every run of the suite (CI included)
WIRE_FUZZ_SECONDS = 30  # the message decoding: small code, a smaller budget


def checked(stdout: str) -> dict[str, int]:
    m = re.search(r"checked: dnat (\d+), reply (\d+), affinity (\d+), rewrite (\d+)", stdout)
    assert m, stdout
    return dict(zip(("dnat", "reply", "affinity", "rewrite"), map(int, m.groups())))


def test_deterministic_fuzz_driver_finds_no_broken_invariant(build_dir: Path):
    exe = compile_c(build_dir / "fuzz_driver", [*CORE_SOURCES, "fuzz.c"], SANITIZE)
    for seed in (1, 2):
        res = subprocess.run([str(exe), "2", str(seed)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-3000:]
        assert "no invariant broken" in res.stdout
        # the inputs must reach every checked path, or the run proves little
        assert all(n > 100 for n in checked(res.stdout).values()), res.stdout


SEEDS = Path(__file__).resolve().parents[2] / "vpp_plugins" / "ksvc" / "core" / "fuzz_seeds.txt"


def seed_files(into: Path) -> list[Path]:
    """The regression inputs of ``fuzz_seeds.txt`` as files (replay arguments, or a libFuzzer corpus)."""
    into.mkdir(parents=True, exist_ok=True)
    lines = [ln.strip() for ln in SEEDS.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    out = []
    for i, line in enumerate(lines):
        out.append(into / f"seed-{i}")
        out[-1].write_bytes(base64.b64decode(line))
    return out


def test_regression_seeds_replay_clean(build_dir: Path, tmp_path: Path):
    exe = compile_c(build_dir / "fuzz_driver", [*CORE_SOURCES, "fuzz.c"], SANITIZE)
    seeds = seed_files(tmp_path / "seeds")
    assert seeds
    res = subprocess.run([str(exe), *map(str, seeds)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "no invariant broken" in res.stdout


@pytest.mark.parametrize("path,before,after,message", [
    ("ks_session.c", "if (!aff_expired(a, now) && ks_service_has", "if (0 && ks_service_has",
     "fresh affinity ignored"),
    ("ks_packet.c", "    s = sum_update(s, pp, np, 2);", "    (void)s;", "L4 checksum broken"),
])
def test_fuzz_driver_detects_a_planted_bug(tmp_path: Path, path: str, before: str, after: str,
                                           message: str):
    core = copy_core(tmp_path)
    src = (core / path).read_text()
    assert before in src
    (core / path).write_text(src.replace(before, after))
    exe = compile_c(tmp_path / "fuzz_bad", [*CORE_SOURCES, "fuzz.c"], ["-O1"], core=core)
    res = subprocess.run([str(exe), "5", "1"], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and message in res.stderr


@pytest.mark.skipif(shutil.which("clang") is None,
                    reason="clang not installed (apt-get install -y clang); the gcc driver ran")
def test_libfuzzer_run_finds_nothing(build_dir: Path, tmp_path: Path):
    exe = compile_c(build_dir / "fuzz_libfuzzer", [*CORE_SOURCES, "fuzz.c"],
                    ["-O1", "-DKP_LIBFUZZER", "-fsanitize=fuzzer,address,undefined"], cc="clang")
    corpus = tmp_path / "corpus"
    seed_files(corpus)  # the regression inputs start the corpus
    # A time budget, not a run count: 10,000 runs stopped short of what a minute finds
    # (a 90 s run found the stale-session seed in fuzz_seeds.txt after ~107k runs).
    res = subprocess.run([str(exe), f"-max_total_time={FUZZ_SECONDS}", "-max_len=2048", "-seed=1", str(corpus)],
                         capture_output=True, text=True, timeout=FUZZ_SECONDS + 240, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    m = re.search(r"Done (\d+) runs", res.stderr)
    assert m and int(m.group(1)) > 1000, res.stderr[-1000:]


def test_deterministic_wire_fuzz_driver_finds_no_broken_invariant(build_dir: Path):
    """The API messages' decoding (ks_wire.c), as the VPP glue runs it on what a client sent."""
    exe = compile_c(build_dir / "fuzz_wire_driver", [*CORE_SOURCES, "fuzz_wire.c"], SANITIZE)
    res = subprocess.run([str(exe), "2", "1"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    m = re.search(r"decoded (\d+), services accepted (\d+), refused (\d+)", res.stdout)
    assert m and all(int(c) > 500 for c in m.groups()), res.stdout


@pytest.mark.parametrize("before,after", [
    # the count against the bytes that arrived: a read past the message
    ("if (!kp_wire_fits(avail, n, sizeof(ks_wire_backend_t), KS_MAX_BACKENDS)) return KS_E_INVAL;",
     "(void)avail;"),
    # the IPv4-mapped check: an IPv6 backend silently taken as IPv4
    ("if (!kp_wire_addr_ok(in)) return KS_E_INVAL;", "if (in->af > KP_WIRE_AF_IP6) return KS_E_INVAL;"),
], ids=["count", "mapped"])
def test_wire_fuzz_driver_detects_a_planted_bug(tmp_path: Path, before: str, after: str):
    core = copy_core(tmp_path)
    src = (core / "ks_wire.c").read_text()
    assert before in src
    (core / "ks_wire.c").write_text(src.replace(before, after))
    exe = compile_c(tmp_path / "fuzz_wire_bad", [*CORE_SOURCES, "fuzz_wire.c"], SANITIZE, core=core)
    res = subprocess.run([str(exe), "5", "1"], capture_output=True, text=True, timeout=120)
    reports = ("heap-buffer-overflow", "runtime error", "invariant broken")  # ASan, UBSan, the harness
    assert res.returncode != 0 and any(r in res.stderr for r in reports), res.stderr[-2000:]


@pytest.mark.skipif(shutil.which("clang") is None,
                    reason="clang not installed (apt-get install -y clang); the gcc driver ran")
def test_libfuzzer_wire_run_finds_nothing(build_dir: Path, tmp_path: Path):
    exe = compile_c(build_dir / "fuzz_wire_libfuzzer", [*CORE_SOURCES, "fuzz_wire.c"],
                    ["-O1", "-DKP_LIBFUZZER", "-fsanitize=fuzzer,address,undefined"], cc="clang")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    res = subprocess.run([str(exe), f"-max_total_time={WIRE_FUZZ_SECONDS}", "-max_len=2048", "-seed=1",
                          str(corpus)], capture_output=True, text=True, timeout=WIRE_FUZZ_SECONDS + 240, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    m = re.search(r"Done (\d+) runs", res.stderr)
    assert m and int(m.group(1)) > 1000, res.stderr[-1000:]
