"""Every feature the configuration can enable is a ``Feature``: the agent calls its hooks without probing."""
from __future__ import annotations

import ast
import stat
from pathlib import Path

import pytest

from testbed.agent_runner import agent_env
from vppagent.agent import features_for
from vppagent.cni.pods import NotStarted
from vppagent.config import load
from vppagent.feature import Feature

AGENT = Path(__file__).resolve().parents[2] / "vppagent" / "agent.py"


def test_enabled_features_implement_the_interface(tmp_path: Path) -> None:
    cfg = load(agent_env(str(tmp_path / "api.sock"), VPPAGENT_STATE_DIR=str(tmp_path / "state"),
                         VPPAGENT_CNI_SOCKET=str(tmp_path / "cni.sock"), VPPAGENT_PODS="true",
                         VPPAGENT_SERVICES="true", VPPAGENT_POLICIES="true", VPPAGENT_CONNECTIVITY="ipip"))
    features = features_for(cfg)
    assert not (tmp_path / "state").exists()  # building the features reads and writes nothing
    assert sorted(f.name for f in features) == ["connectivity", "pods", "policies", "services"]
    for f in features:
        assert isinstance(f, Feature), f
        assert type(f).desired is not Feature.desired, f.name
        # incremental features answer desired_delta; the others take the base's "full path" None
        assert (type(f).desired_delta is not Feature.desired_delta) == f.incremental, f.name
        assert f.watches and f.descriptors(), f.name
    pods = next(f for f in features if f.name == "pods")
    with pytest.raises(NotStarted):
        pods.ipam.allocations()
    pods.close()  # safe before start
    pods.start()
    try:
        assert (tmp_path / "state" / "attachments").is_dir() and pods.ipam.allocations() == {}
        assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    finally:
        pods.close()


def test_the_agent_probes_no_feature_for_its_hooks() -> None:
    calls = [n for n in ast.walk(ast.parse(AGENT.read_text()))
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("getattr", "hasattr")]
    assert calls == [], [ast.unparse(c) for c in calls]
