"""The product's wheel, built from pyproject.toml as the image builds it: product code only.

The emulator, the policy reference and every other harness live in ``testbed/``, a package of
its own that the wheel (and so the image) must never carry.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A copy of what the Dockerfile copies: building in the checkout would leave build/ behind.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for pkg in ("vppagent", "startup", "ipsec"):
        shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = out.glob("vppagent-*.whl")
    return whl


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def test_the_wheel_holds_the_product_and_no_test_double(wheel_names: list[str]) -> None:
    tops = {n.split("/")[0] for n in wheel_names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"vppagent", "startup", "ipsec"}, tops
    assert "vppagent/agent.py" in wheel_names and "vppagent/vpp/client.py" in wheel_names
    doubles = [n for n in wheel_names if "emulator" in n or "reference" in n or "fakekube" in n
               or "testbed" in n or "demo" in n]
    assert doubles == [], doubles


def test_the_wheel_installs_only_the_product_commands(wheel: Path, wheel_names: list[str]) -> None:
    (entry,) = [n for n in wheel_names if n.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(wheel) as z:
        text = z.read(entry).decode()
    scripts = {line.split("=")[0].strip() for line in text.split("[console_scripts]")[1].splitlines()
               if "=" in line and not line.startswith("[")}
    assert scripts == {"vppagent", "vppagent-cni"}, text


def test_the_product_imports_nothing_from_the_test_bed() -> None:
    hits = [str(p.relative_to(REPO)) for p in (REPO / "vppagent").rglob("*.py")
            if "testbed" in p.read_text() or "tests." in p.read_text()]
    assert hits == [], hits
