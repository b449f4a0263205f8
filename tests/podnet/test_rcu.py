"""The agent's RCU setting: turned on from off, put back on a clean stop, others' left alone."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from vppagent.cni.rcu import RcuExpedited


@pytest.fixture
def knob(tmp_path: Path) -> Path:
    p = tmp_path / "rcu_expedited"
    p.write_text("0\n")
    return p


def test_off_is_turned_on_and_restored(knob: Path) -> None:
    r = RcuExpedited(knob)
    assert r.enable()
    assert knob.read_text().strip() == "1"
    r.restore()
    assert knob.read_text().strip() == "0"
    r.restore()  # twice: nothing more
    assert knob.read_text().strip() == "0"


def test_on_already_is_not_ours_to_restore(knob: Path) -> None:
    knob.write_text("1\n")
    r = RcuExpedited(knob)
    assert r.enable()
    r.restore()
    assert knob.read_text().strip() == "1"


def test_unwritable_setting_is_a_warning_not_a_failure(tmp_path: Path, caplog) -> None:
    r = RcuExpedited(tmp_path / "missing" / "rcu_expedited")
    with caplog.at_level(logging.WARNING, logger="vppagent.cni.rcu"):
        assert not r.enable()
    assert "cannot expedite RCU" in caplog.text
    r.restore()  # nothing to put back, and no error
    assert not (tmp_path / "missing").exists()
