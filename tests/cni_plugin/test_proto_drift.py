"""The committed gRPC stubs are what scripts/gen_proto.sh makes from cni_backend.proto today."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PB = REPO / "vppagent" / "cni" / "pb"
STUBS = ["cni_backend_pb2.py", "cni_backend_pb2.pyi", "cni_backend_pb2_grpc.py"]


def test_committed_stubs_match_the_proto(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools (a test dependency) is not installed")
    r = subprocess.run(["bash", str(REPO / "scripts" / "gen_proto.sh"), str(tmp_path)],
                       env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    stale = [name for name in STUBS
             if (tmp_path / name).read_text() != (PB / name).read_text()]
    assert not stale, f"stubs out of date with cni_backend.proto: {stale}; run scripts/gen_proto.sh"


def test_grpc_stub_imports_its_messages_package_relative():
    text = (PB / "cni_backend_pb2_grpc.py").read_text()
    assert "from . import cni_backend_pb2 as" in text
    assert "\nimport cni_backend_pb2" not in text
