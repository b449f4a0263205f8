"""Pure rules: pair encryption decisions and MTU overhead (unit tier)."""
from __future__ import annotations

import pytest

from tests.connectivity.conftest import make_node
from vppagent.connectivity import encryption as enc
from vppagent.connectivity.mtu import max_inner, overhead, pod_mtu


def decide(a_ann: dict, b_ann: dict, key_problem=None):
    a, b = make_node("node-a", **a_ann), make_node("node-b", **b_ann)
    return enc.decide(a, enc.read(a), b, enc.read(b), key_problem)


@pytest.mark.parametrize("a,b,outcome", [
    ({}, {}, "none"),
    ({"encryption": "none"}, {}, "none"),
    ({"encryption": "ipsec"}, {"encryption": "ipsec"}, "ipsec"),
    ({"encryption": "wireguard"}, {"encryption": "WireGuard"}, "wireguard"),
    ({"encryption": "ipsec"}, {}, "fallback"),
    ({"encryption": "ipsec"}, {"encryption": "wireguard"}, "fallback"),
    ({"encryption": "ipsec", "encryption_required": "true"}, {}, "blocked"),
    ({"encryption": "ipsec"}, {"encryption_required": "true"}, "blocked"),
    ({"encryption": "bogus"}, {"encryption": "bogus"}, "fallback"),  # unknown never matches
    ({"encryption": "ipsec", "encryption_required": "yes"}, {}, "blocked"),  # fail closed
    ({"encryption_required": "true"}, {}, "none"),  # nobody asked for encryption
])
def test_pair_outcomes(a, b, outcome):
    d = decide(a, b)
    assert d.outcome == outcome
    assert (d.problem is not None) == (outcome in ("fallback", "blocked"))
    assert decide(b, a).outcome == outcome  # symmetric: both nodes reach the same verdict


def test_unusable_keys_fall_back_or_block():
    d = decide({"encryption": "ipsec"}, {"encryption": "ipsec"}, key_problem="peer key missing")
    assert d.outcome == "fallback" and d.problem.reason == "EncryptionKeyUnavailable"
    assert "peer key missing" in d.problem.message
    d = decide({"encryption": "ipsec", "encryption_required": "true"}, {"encryption": "ipsec"}, "x")
    assert d.outcome == "blocked" and "dropped" in d.problem.message


def test_bad_annotation_values_are_problems_on_their_node():
    n = make_node("node-b", encryption="rot13", encryption_required="maybe")
    e = enc.read(n)
    assert e.kind == "invalid" and e.required
    assert {p.reason for p in e.problems} == {"UnknownEncryption", "InvalidEncryptionRequired"}
    assert all(p.origin == n.key for p in e.problems)


def test_overheads_and_pod_mtu_for_a_1500_underlay():
    assert {m: max_inner(m, 1500) for m in ("flat", "ipip", "vxlan", "ipsec", "wireguard")} == {
        "flat": 1500, "ipip": 1480, "vxlan": 1464, "ipsec": 1446, "wireguard": 1440}
    assert pod_mtu(1500, ["ipip", "ipsec", "wireguard"]) == 1440
    assert pod_mtu(9000, ["vxlan"]) == 8964
    assert max_inner("ipip", 1500, underlay_v6=True) == 1460
    assert overhead("ipsec") == 57 and overhead("wireguard") == 75
    with pytest.raises(ValueError):
        overhead("gre")


@pytest.mark.parametrize("uplink", [1280, 1400, 1500, 1501, 1502, 1503, 9000])
def test_the_pod_mtu_never_fragments(uplink):
    # Outer size of a full-size inner packet, computed the long way (padding and all).
    def outer(mode: str, inner: int) -> int:
        if mode == "ipsec":
            payload = inner + 2
            payload += -payload % 4
            return 20 + 8 + 8 + payload + 16
        if mode == "wireguard":
            return 20 + 8 + 16 + (inner + -inner % 16) + 16
        return inner + {"flat": 0, "ipip": 20, "vxlan": 36}[mode]

    for mode in ("flat", "ipip", "vxlan", "ipsec", "wireguard"):
        m = max_inner(mode, uplink)
        assert outer(mode, m) <= uplink
        assert outer(mode, m + 1) > uplink  # and it is the largest that fits


def test_pair_outcomes_are_exported_as_a_metric(tmp_path):
    from prometheus_client import CollectorRegistry

    from tests.connectivity.conftest import CLUSTER_CIDRS, ClusterView
    from vppagent.connectivity import EncryptionSettings, NodeConnectivity

    reg = CollectorRegistry()
    f = NodeConnectivity("node-a", CLUSTER_CIDRS, mode="ipip", registry=reg,
                         encryption=EncryptionSettings(tmp_path / "keys"))
    cluster = ClusterView({"node-a": make_node("node-a", encryption="ipsec"),
                           "node-b": make_node("node-b"),
                           "node-c": make_node("node-c", encryption="wireguard", encryption_required="true")})
    f.desired(cluster)
    assert f.pairs == {"node-b": "fallback", "node-c": "blocked"}

    def value(outcome):
        return reg.get_sample_value("vppagent_node_pairs", {"outcome": outcome})

    assert (value("fallback"), value("blocked"), value("ipsec")) == (1.0, 1.0, 0.0)
    # Secrets never become label values or samples.
    text = "\n".join(str(m) for m in reg.collect())
    assert (tmp_path / "keys" / "ipsec.key").read_bytes().hex() not in text


def test_flat_mode_keeps_routes_when_this_node_is_unknown(tmp_path):
    from tests.connectivity.conftest import CLUSTER_CIDRS, ClusterView
    from vppagent.connectivity import NodeConnectivity

    f = NodeConnectivity("node-a", CLUSTER_CIDRS, mode="flat")
    intents, problems = f.desired(ClusterView({"node-b": make_node("node-b")}))
    assert [str(i.value.prefix) for i in intents] == ["10.244.2.0/24"]
    assert [p.reason for p in problems] == ["NodeNotFound"]
    f = NodeConnectivity("node-a", CLUSTER_CIDRS, mode="ipip")
    intents, problems = f.desired(ClusterView({"node-b": make_node("node-b")}))
    assert intents == [] and [p.reason for p in problems] == ["NodeNotFound"]


def test_spi_collision_between_generations_keeps_the_previous_keys(tmp_path, monkeypatch):
    import dataclasses

    import ipsec.derive
    from tests.connectivity.conftest import CLUSTER_CIDRS, ClusterView
    from vppagent.connectivity import EncryptionSettings, NodeConnectivity
    from vppagent.model.k8s.fields import FrozenMap

    names = ("node-a", "node-b", "node-c")
    cluster = ClusterView({n: make_node(n, encryption="ipsec") for n in names})
    fs = {n: NodeConnectivity(n, CLUSTER_CIDRS, mode="ipip", encryption=EncryptionSettings(tmp_path / n))
          for n in names}

    def publish():
        for n, f in fs.items():
            node = cluster.nodes[n]
            cluster.nodes[n] = dataclasses.replace(node, annotations=FrozenMap({**node.annotations,
                                                                                **f.annotations()}))

    for f in fs.values():
        f.desired(cluster)
    publish()
    # SPIs that ignore the epoch (and the peer): every generation of every pair has the same ones.
    monkeypatch.setattr(ipsec.derive, "derive_spi", lambda sender, receiver, ctx: 0x1000 + len(receiver))
    for f in fs.values():
        f.desired(cluster)
    # Equal SPIs across *different* peers are fine: VPP looks inbound SAs up by (peer address, SPI).
    assert fs["node-a"].pairs == {"node-b": "ipsec", "node-c": "ipsec"}
    # node-c rekeys: its new generation's SPIs equal the ones still held for the pair.
    before = {n: dict(f._rekey) for n, f in fs.items()}
    fs["node-c"]._epochs.advance()
    publish()
    results = {n: f.desired(cluster) for n, f in fs.items()}
    # Still encrypted, on the previous keys, on both ends; the collision is reported.
    assert fs["node-a"].pairs == {"node-b": "ipsec", "node-c": "ipsec"}
    assert fs["node-c"].pairs == {"node-a": "ipsec", "node-b": "ipsec"}
    for me, peer in (("node-a", "node-c"), ("node-c", "node-a")):
        [g] = fs[me]._rekey[peer].generations
        assert g.keys == before[me][peer].generations[0].keys  # the old generation, alone
        [p] = [p for p in results[me][1] if p.reason == "SpiCollision" and p.origin == cluster.nodes[peer].key]
        assert "SPI" in p.message and "keeping the previous" in p.message
    [g] = fs["node-a"]._rekey["node-b"].generations  # the other pair is untouched
