"""State and key directories are the owner's only (0700), even when they existed looser.

kubelet creates hostPath directories 0755; the agent's state (IPAM, attachment records) and
keys must not stay readable by others."""
from __future__ import annotations

import stat
from pathlib import Path

from ipsec import load_or_create
from ipsec.rekey import EpochStore
from vppagent.cni.ipam import Ipam
from vppagent.cni.store import AttachmentStore


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_state_directories_are_tightened_to_0700(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "ipam").mkdir(parents=True, mode=0o755)
    (state / "attachments").mkdir(mode=0o755)
    state.chmod(0o755)
    (state / "ipam").chmod(0o755)
    Ipam(state).close()
    AttachmentStore(state)
    assert {p.name: _mode(p) for p in (state, state / "ipam", state / "attachments")} == {
        "state": 0o700, "ipam": 0o700, "attachments": 0o700}


def test_a_fresh_state_directory_is_0700_at_every_level_the_agent_makes(tmp_path: Path) -> None:
    state = tmp_path / "fresh" / "state"
    Ipam(state).close()
    assert _mode(state) == 0o700 and _mode(state / "ipam") == 0o700


def test_key_directories_are_tightened_to_0700(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o755)
    keys.chmod(0o755)
    load_or_create(keys / "wireguard.key")
    assert _mode(keys) == 0o700
    epochs = tmp_path / "epochs"
    epochs.mkdir()
    epochs.chmod(0o755)
    EpochStore(epochs / "ipsec.epoch").store(1)
    assert _mode(epochs) == 0o700
