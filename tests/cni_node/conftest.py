"""Fixtures: private network namespaces that are always removed, even on failure."""
from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable, Iterator

import pytest


def _ns_add(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)


def _ns_del(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture
def make_netns() -> Iterator[Callable[[], str]]:
    """Create uniquely named namespaces; yield a factory returning their /var/run/netns paths."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    made: list[str] = []

    def make() -> str:
        name = f"vpa-cn-{secrets.token_hex(4)}"
        _ns_add(name)
        made.append(name)
        return f"/var/run/netns/{name}"

    try:
        yield make
    finally:
        for name in made:
            _ns_del(name)


def unique_ifname(prefix: str = "vpt") -> str:
    return f"{prefix}{secrets.token_hex(4)}"     # 11 chars, under the 15-char limit
