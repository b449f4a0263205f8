"""Shared test helpers: where the API definitions are, and the real-VPP switch."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def api_dir() -> str:
    env = os.environ.get("VPPAGENT_API_DIR")
    if env:
        return env
    shared = REPO.parent / "shared" / "vpp-api" / "v26.06"
    if not shared.is_dir():
        pytest.exit(f"VPP API definitions not found: set VPPAGENT_API_DIR (looked in {shared})", 2)
    return str(shared)


def real_vpp_reason() -> str | None:
    """Why the real-VPP tier cannot run here, or None when it can."""
    if os.environ.get("VPPAGENT_VPP_SOCKET"):
        return None
    binary = os.environ.get("VPPAGENT_VPP_BIN")
    if not binary:
        return "no real VPP: set VPPAGENT_VPP_BIN (a vpp binary) or VPPAGENT_VPP_SOCKET"
    if not os.access(binary, os.X_OK):
        return f"VPPAGENT_VPP_BIN={binary} is not an executable"
    if os.geteuid() != 0:
        return "a private VPP needs root (af_packet, shared memory)"
    return None


@pytest.fixture(scope="session")
def api_definitions_dir() -> str:
    return api_dir()
