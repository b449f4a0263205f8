"""Client configuration: a generated kubeconfig reaches the fake server; bad configs fail clearly."""
from __future__ import annotations

from pathlib import Path

import pytest

from testbed.fakekube import FakeKube
from testbed.fakekube import objects as k
from vppagent.sources import NODES, KubeConfigError, Upsert, load_api_client

from .conftest import Events


def test_kubeconfig_client_lists_and_watches_the_fake_server(
        fake: FakeKube, events: Events, start_source, tmp_path: Path) -> None:
    fake.add(k.node("node-1"))
    api = load_api_client(fake.write_kubeconfig(tmp_path / "kubeconfig"))
    try:
        assert api.configuration.host == fake.url
        assert api.configuration.retries == 1  # our backoff, not urllib3's bursts, does the retrying
        start_source(NODES, api=api)
        evs = events.until_synced()
        assert [e.obj.name for e in evs if isinstance(e, Upsert)] == ["node-1"]
    finally:
        api.close()


def test_missing_kubeconfig_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match="no such file") as err:
        load_api_client(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(err.value)


def test_broken_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\ncontexts: []\nclusters: []\nusers: []\n")
    with pytest.raises(KubeConfigError, match="kubeconfig"):
        load_api_client(path)


def test_no_cluster_and_no_kubeconfig_is_a_config_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubeConfigError, match="not in a cluster"):
        load_api_client()


def test_in_cluster_without_service_account_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(KubeConfigError, match="in-cluster"):
        load_api_client()
