"""Scenario files: the shipped ones load and pair with a kernel baseline; bad ones name the key at fault."""
from __future__ import annotations

from pathlib import Path

import pytest

from perf.runner.run import is_baseline, plan
from perf.runner.scenario import SCENARIO_DIR, Load, ScenarioError, all_scenarios, find, load_file, parse


def test_every_shipped_scenario_loads_and_has_a_kernel_baseline() -> None:
    scenarios = all_scenarios()
    names = {s.name for s in scenarios}
    # one per case the issue names
    for wanted in ("vpp-bare", "vpp-policy-nat", "vpp-service-vip", "vpp-policy", "two-node-flat", "two-node-ipsec",
                   "two-node-wireguard", "vpp-memif", "vpp-tun", "kernel-bridge", "kernel-route",
                   "trex-udp64-imix", "cluster-pod-to-pod"):
        assert wanted in names
    for s in scenarios:
        assert Path(s.source).stem == s.name
        if is_baseline(s):
            continue
        assert s.baseline in names, s.name
        assert is_baseline(find(s.baseline)), s.name
        if s.compare_to:
            assert s.compare_to in names


def test_the_policy_and_nat_target_is_within_ten_percent_of_bare_vpp() -> None:
    sc = find("vpp-policy-nat")
    assert (sc.services, sc.policy, sc.compare_to, sc.target_ratio) == (True, True, "vpp-bare", 0.9)
    assert sc.load[0] == Load("iperf3", "tcp", 1)
    assert sc.load[1].protocol == "udp" and sc.load[1].length == 64


def test_plan_runs_the_baseline_first_with_every_load_of_its_users() -> None:
    order = plan(["vpp-policy-nat"])
    assert [s.name for s in order] == ["kernel-bridge", "vpp-bare", "vpp-policy-nat"]
    assert {ld.label for ld in order[0].load} == {"iperf3 tcp x1", "iperf3 udp 64B x1"}
    # a baseline asked for explicitly is not run twice
    assert [s.name for s in plan(["kernel-bridge", "vpp-bare"])] == ["kernel-bridge", "vpp-bare"]


def test_memif_packet_generator_is_compared_with_iperf3_udp_of_the_same_ip_size() -> None:
    order = plan(["vpp-memif"])
    assert [s.name for s in order] == ["kernel-bridge", "vpp-bare", "vpp-memif"]
    (pg,) = order[2].load
    assert (pg.tool, pg.length, pg.label) == ("vpp-pg", 92, "vpp-pg udp 92B IP")
    assert pg.comparable() == Load("iperf3", "udp", 1, "0", 64)  # 64 + 8 UDP + 20 IPv4 = 92
    assert "iperf3 udp 64B x1" in {ld.label for ld in order[0].load}
    assert all(ld.tool == "iperf3" for ld in order[0].load)


def test_plan_checks_kubectl_keys_before_anything_runs(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("name: c\nenv: kubectl\nbaseline: cluster-kernel\nkubectl: {client_node: a}\n")
    with pytest.raises(ScenarioError) as e:
        plan(["kernel-bridge", str(bad)])
    assert e.value.key == "kubectl.server_node"


@pytest.mark.parametrize("raw, key, words", [
    ({"env": "local", "baseline": "kernel-bridge"}, "name", "missing"),
    ({"name": "x", "env": "moon"}, "env", "'moon' is not one of"),
    ({"name": "x", "env": "kernel", "colour": 1}, "colour", "unknown key"),
    ({"name": "x", "env": "local"}, "baseline", "kernel baseline"),
    ({"name": "x", "env": "local", "baseline": "k", "load": [{}, {"protocol": "sctp"}]}, "load[1].protocol", "sctp"),
    ({"name": "x", "env": "local", "baseline": "k", "load": [{"parallel": 0}]}, "load[0].parallel", "outside"),
    ({"name": "x", "env": "local", "baseline": "k", "load": [{"bitrate": "fast"}]}, "load[0].bitrate", "iperf3 rate"),
    ({"name": "x", "env": "local", "baseline": "k", "load": [{"speed": 1}]}, "load[0].speed", "unknown key"),
    ({"name": "x", "env": "local", "baseline": "k", "load": []}, "load", "non-empty"),
    ({"name": "x", "env": "local", "baseline": "k", "target_ratio": 0.9}, "target_ratio", "compare_to"),
    ({"name": "x", "env": "local", "baseline": "k", "services": "yes"}, "services", "expected bool"),
    ({"name": "x", "env": "local", "baseline": "k", "mtu": True}, "mtu", "boolean"),
    ({"name": "x", "env": "local", "baseline": "k", "af_packet_version": 1}, "af_packet_version", "not 2 or 3"),
    ({"name": "x", "env": "local", "baseline": "k", "af_packet_version": "3"}, "af_packet_version", "expected int"),
    ({"name": "x", "env": "local", "baseline": "k", "encryption": "ipsec"}, "encryption", "two-node"),
    ({"name": "x", "env": "kernel", "policy": True}, "policy", "kernel scenario"),
    ({"name": "x", "env": "two-node", "baseline": "k", "target": "service"}, "target", "service VIP"),
    ({"name": "x", "env": "local", "baseline": "k", "load": [{"tool": "vpp-pg"}]}, "load", "memif pods only"),
    (["name", "x"], "(top)", "mapping"),
])
def test_bad_scenarios_name_the_key(raw: object, key: str, words: str) -> None:
    with pytest.raises(ScenarioError) as e:
        parse(raw, "t.yaml")
    assert e.value.key == key
    assert words in e.value.problem
    assert str(e.value).startswith(f"t.yaml: {key}: ")


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml: \(yaml\): not valid YAML"):
        load_file(bad)
    with pytest.raises(ScenarioError, match=r"missing\.yaml: \(file\): cannot read"):
        load_file(tmp_path / "missing.yaml")
    other = tmp_path / "k.yaml"
    other.write_text("name: not-k\nenv: kernel\n")
    with pytest.raises(ScenarioError, match="differs from the file name"):
        find("k", tmp_path)
    with pytest.raises(ScenarioError, match="no such scenario file .*known: .*vpp-bare"):
        find("nope", SCENARIO_DIR)
