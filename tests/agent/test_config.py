"""Configuration: defaults, YAML file, environment, and one clear line per invalid key."""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.targets import REPO
from vppagent.config import KEYS, ConfigError, describe, load


def test_defaults_are_documented_and_valid() -> None:
    cfg = load({"VPPAGENT_NODE_NAME": "n1"})
    assert cfg.node_name == "n1"
    assert cfg.vpp_socket == "/run/vpp/api.sock"
    assert cfg.service_cidrs == (ipaddress.ip_network("10.96.0.0/12"),)
    assert cfg.cluster_cidrs == (ipaddress.ip_network("10.244.0.0/16"),)
    assert cfg.services is True and cfg.connectivity == "flat"
    rows = describe()
    assert [r[1] for r in rows] == ["VPPAGENT_CONFIG"] + [k.env for k in KEYS]


def test_environment_wins_over_the_file_which_wins_over_defaults(tmp_path: Path) -> None:
    f = tmp_path / "agent.yaml"
    f.write_text("vpp_socket: /file/api.sock\nservice_cidrs: [10.100.0.0/16, 'fd00:100::/108']\n"
                 "health_port: 9999\nservices: false\n")
    cfg = load({"VPPAGENT_CONFIG": str(f), "VPPAGENT_HEALTH_PORT": "8080", "VPPAGENT_NODE_NAME": "n"})
    assert cfg.vpp_socket == "/file/api.sock"
    assert cfg.health_port == 8080
    assert cfg.services is False
    assert [str(c) for c in cfg.service_cidrs] == ["10.100.0.0/16", "fd00:100::/108"]
    assert cfg.config_file == str(f)


@pytest.mark.parametrize("env,key,fragment", [
    ({"VPPAGENT_SERVICE_CIDRS": "10.96.0.0/33"}, "service_cidrs", "not a CIDR"),
    ({"VPPAGENT_SERVICE_CIDRS": "10.96.0.1/12"}, "service_cidrs", "host bits"),
    ({"VPPAGENT_HEALTH_PORT": "http"}, "health_port", "expected an integer"),
    ({"VPPAGENT_HEALTH_PORT": "70000"}, "health_port", "between 0 and 65535"),
    ({"VPPAGENT_LOG_LEVEL": "loud"}, "log_level", "must be one of"),
    ({"VPPAGENT_SERVICES": "maybe"}, "services", "true or false"),
    ({"VPPAGENT_VPP_TIMEOUT_S": "-1"}, "vpp_timeout_s", "between"),
    ({"VPPAGENT_RETRY_INITIAL_S": "60", "VPPAGENT_RETRY_MAX_S": "5"}, "retry_initial_s", "exceeds"),
    ({"VPPAGENT_CLUSTER_CIDRS": "10.0.0.0/8"}, "service_cidrs", "overlaps cluster CIDR"),
])
def test_an_invalid_value_names_its_key_and_where_it_came_from(env, key, fragment) -> None:
    with pytest.raises(ConfigError) as e:
        load({"VPPAGENT_NODE_NAME": "n", **env})
    assert e.value.key == key
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_key_or_bad_yaml_in_the_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "a.yaml"
    f.write_text("vpp_sockt: /x\n")
    with pytest.raises(ConfigError, match="vpp_sockt .*unknown key"):
        load({}, str(f))
    f.write_text("vpp_socket: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load({}, str(f))
    with pytest.raises(ConfigError, match="cannot read"):
        load({}, str(tmp_path / "missing.yaml"))


def test_vppagent_run_stops_with_one_line_naming_the_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPPAGENT_")}
    env.update(VPPAGENT_SERVICE_CIDRS="banana", PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, "-m", "vppagent.cli", "run"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("vppagent run: invalid configuration: service_cidrs (environment "
                               "VPPAGENT_SERVICE_CIDRS):")
