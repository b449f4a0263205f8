"""Two nodes against two emulated VPPs: what each mode and each encryption programs, live toggles,
rekeying, bad input, and adoption after an agent restart (emulator tier: checks what gets
programmed, not traffic)."""
from __future__ import annotations

import dataclasses
import ipaddress
import logging

import pytest

from ipsec import IPSEC_KEY_EPOCH, IPSEC_PUBLIC_KEY, WIREGUARD_PUBLIC_KEY, decode_public
from testbed.emulator.handlers import feature as emu_feature
from vppagent.vpp import interfaces, ipsec, neighbors, routes, tunnels, wireguard
from vppagent.vpp.routes import PathType

NET = ipaddress.ip_network("10.244.0.0/16")


def pod_routes(vpp) -> dict[str, list]:
    """Routes inside the cluster CIDR (not host routes) -> their paths."""
    return {str(r.prefix): list(r.paths) for r in routes.dump(vpp, 0)
            if r.prefix.subnet_of(NET) and r.prefix.prefixlen < 32}


def tagged(vpp, prefix: str) -> dict[str, interfaces.Interface]:
    return {t[len(prefix):]: i for t, i in interfaces.by_tag(vpp, prefix).items()}


def state(vpp) -> dict:
    return {
        "tunnels": {n: i.name for n, i in tagged(vpp, "vppagent:tun:").items()},
        "routes": pod_routes(vpp),
        "sas": sorted((s.sa_id, s.spi, s.inbound) for s in ipsec.dump_sas(vpp)),
        "protections": ipsec.dump_protections(vpp),
        "wg": wireguard.dump_interfaces(vpp),
        "wg_peers": wireguard.dump_peers(vpp),
    }


def reasons(side) -> set[str]:
    return {p.reason for p in side.problems}


# -- clear modes ----------------------------------------------------------------------------


def test_flat_mode_routes_via_internal_ip(make_pair):
    pair = make_pair("flat")
    pair.program()
    assert list(pod_routes(pair.a.vpp)) == ["10.244.2.0/24"]
    [path] = pod_routes(pair.a.vpp)["10.244.2.0/24"]
    assert path.next_hop == ipaddress.ip_address("192.0.2.2") and path.type == PathType.NORMAL
    assert tagged(pair.a.vpp, "vppagent:tun:") == {}
    assert pair.a.feature.pairs == {"node-b": "none"}


@pytest.mark.parametrize("mode", ["ipip", "vxlan"])
def test_tunnel_mode_programs_a_tunnel_and_routes_per_peer(make_pair, mode):
    pair = make_pair(mode)
    pair.program()
    for me, peer, my_ip, peer_ip, peer_cidr in (
            (pair.a, "node-b", "192.0.2.1", "192.0.2.2", "10.244.2.0/24"),
            (pair.b, "node-a", "192.0.2.2", "192.0.2.1", "10.244.1.0/24")):
        [(name, iface)] = tagged(me.vpp, "vppagent:tun:").items()
        assert name == peer and iface.admin_up
        # VPP segments pods' GSO frames before it encapsulates them
        assert emu_feature.enabled(me.emu, iface.sw_if_index) == {("interface-output", "gso")}
        if mode == "ipip":
            [t] = tunnels.dump_ipip(me.vpp, iface.sw_if_index)
        else:
            [t] = tunnels.dump_vxlan(me.vpp, iface.sw_if_index)
            assert t.spec.vni == 7000
        assert (str(t.spec.src), str(t.spec.dst)) == (my_ip, peer_ip)
        # Unnumbered to the pod gateway loopback: IPv4 enabled for what it decapsulates.
        [gw] = [i for i in interfaces.dump(me.vpp) if i.tag == "vppagent:lo:pod-gateway"]
        assert interfaces.unnumbered(me.vpp)[iface.sw_if_index] == gw.sw_if_index
        [path] = pod_routes(me.vpp)[peer_cidr]
        assert path.sw_if_index == iface.sw_if_index
        if mode == "vxlan":
            # L3 VXLAN: via its static next hop (a neighbour on the tunnel, outside the FIB).
            assert str(path.next_hop) == "169.254.0.2"
            [n] = neighbors.dump(me.vpp, iface.sw_if_index)
            assert str(n.ip) == "169.254.0.2" and n.static
    # Idempotent: the same state again costs no call but the read-back-free diff.
    assert pair.a.program(pair.cluster).calls == 0


def test_peers_come_and_go_with_nodes(make_pair):
    from tests.connectivity.conftest import make_node

    pair = make_pair("ipip")
    pair.program()
    pair.cluster.nodes["node-c"] = make_node("node-c")
    pair.a.program(pair.cluster)
    assert set(tagged(pair.a.vpp, "vppagent:tun:")) == {"node-b", "node-c"}
    assert set(pod_routes(pair.a.vpp)) == {"10.244.2.0/24", "10.244.3.0/24"}
    del pair.cluster.nodes["node-b"]
    pair.a.program(pair.cluster)
    assert set(tagged(pair.a.vpp, "vppagent:tun:")) == {"node-c"}
    assert set(pod_routes(pair.a.vpp)) == {"10.244.3.0/24"}
    assert tunnels.dump_ipip(pair.a.vpp)[0].spec.dst == ipaddress.ip_address("192.0.2.3")


# -- IPsec -------------------------------------------------------------------------------------


def ipsec_view(side):
    """(outbound SA, inbound SAs) of the protection on the tunnel to the other node."""
    [p] = ipsec.dump_protections(side.vpp)
    sas = {s.sa_id: s for s in ipsec.dump_sas(side.vpp)}
    return sas[p.sa_out], [sas[i] for i in p.sa_in], p


def test_ipsec_both_sides_program_matching_sas(make_pair):
    pair = make_pair("ipip", encryption="ipsec")
    pair.program()
    assert pair.a.feature.pairs == {"node-b": "ipsec"} and pair.b.feature.pairs == {"node-a": "ipsec"}
    a_out, a_in, a_p = ipsec_view(pair.a)
    b_out, b_in, b_p = ipsec_view(pair.b)
    [tun] = tagged(pair.a.vpp, "vppagent:tun:").values()
    assert a_p.sw_if_index == tun.sw_if_index and tun.name.startswith("ipsec")
    assert ipsec.dump_itfs(pair.a.vpp)[0].sw_if_index == tun.sw_if_index
    for out, [inb] in ((a_out, b_in), (b_out, a_in)):
        assert out.spi == inb.spi and out.crypto_key == inb.crypto_key and out.salt == inb.salt
        assert out.crypto_alg == ipsec.CryptoAlg.AES_GCM_256 and len(out.crypto_key) == 32
        assert out.flags & ipsec.SaFlags.USE_ANTI_REPLAY and out.flags & ipsec.SaFlags.IS_TUNNEL
        assert out.flags & ipsec.SaFlags.USE_ESN and inb.anti_replay_window >= 64
        assert not out.inbound and inb.inbound
        # Outer addresses: sender -> receiver on both sides.
        assert (out.tunnel.src, out.tunnel.dst) == (inb.tunnel.src, inb.tunnel.dst)
    assert str(a_out.tunnel.src) == "192.0.2.1" and str(a_out.tunnel.dst) == "192.0.2.2"
    assert a_out.crypto_key != a_in[0].crypto_key
    [path] = pod_routes(pair.a.vpp)["10.244.2.0/24"]
    assert path.sw_if_index == tun.sw_if_index


def test_ipsec_rekey_on_peer_epoch_is_make_before_break(make_pair):
    pair = make_pair("ipip", encryption="ipsec")
    pair.program()
    old_a_out, _, _ = ipsec_view(pair.a)
    # node-b advances its key epoch (lifetime reached): both sides see the new annotation.
    pair.b.feature._epochs.advance()
    pair.publish()
    pair.program()

    def check_no_gap():
        # Whatever each side sends with, the other accepts.
        a_out, a_in, _ = ipsec_view(pair.a)
        b_out, b_in, _ = ipsec_view(pair.b)
        assert a_out.spi in {s.spi for s in b_in} and b_out.spi in {s.spi for s in a_in}
        return a_out, a_in

    a_out, a_in = check_no_gap()
    assert a_out.spi == old_a_out.spi and len(a_in) == 2  # new inbound added, still sending old
    assert pair.a.feature.next_change() == pair.clock.now + 5
    pair.clock.now += 5
    pair.program()
    a_out, a_in = check_no_gap()
    assert a_out.spi != old_a_out.spi and len(a_in) == 2  # switched; old inbound kept
    pair.clock.now += 30
    pair.program()
    a_out, a_in = check_no_gap()
    assert len(a_in) == 1
    # The replaced SAs are gone from VPP (nothing leaks across a rekey).
    assert len(ipsec.dump_sas(pair.a.vpp)) == 2 and len(ipsec.dump_sas(pair.b.vpp)) == 2


def test_ipsec_rekey_on_peer_public_key_change(make_pair, tmp_path):
    pair = make_pair("ipip", encryption="ipsec")
    pair.program()
    before = {s.crypto_key for s in ipsec.dump_sas(pair.a.vpp)}
    # node-b gets a new key (its file replaced by the operator, agent restarted).
    (tmp_path / "node-b" / "keys" / "ipsec.key").unlink()
    pair.b = pair.b.restart_agent(tmp_path, "ipip", pair.clock)
    pair.publish()
    pair.program()
    a_out, a_in, _ = ipsec_view(pair.a)
    assert len(a_in) == 2 and a_out.crypto_key in before
    pair.clock.now += 40
    pair.program()
    a_out, a_in, _ = ipsec_view(pair.a)
    assert len(a_in) == 1 and not ({a_out.crypto_key, a_in[0].crypto_key} & before)
    b_out, b_in, _ = ipsec_view(pair.b)
    assert a_out.crypto_key == b_in[0].crypto_key


# -- WireGuard ---------------------------------------------------------------------------------


def test_wireguard_one_peer_per_node(make_pair):
    pair = make_pair("vxlan", encryption="wireguard")
    pair.program()
    assert pair.a.feature.pairs == {"node-b": "wireguard"}
    [wg] = wireguard.dump_interfaces(pair.a.vpp)
    a_pub = decode_public(pair.cluster.nodes["node-a"].annotations[WIREGUARD_PUBLIC_KEY], node="node-a")
    b_pub = decode_public(pair.cluster.nodes["node-b"].annotations[WIREGUARD_PUBLIC_KEY], node="node-b")
    assert wg.public_key == a_pub and wg.port == 51820 and str(wg.src_ip) == "192.0.2.1"
    [peer] = wireguard.dump_peers(pair.a.vpp)
    assert peer.spec.public_key == b_pub and str(peer.spec.endpoint) == "192.0.2.2"
    assert peer.spec.allowed_ips == (ipaddress.ip_network("10.244.2.0/24"),)
    assert peer.spec.persistent_keepalive == 25 and peer.spec.port == 51820
    [path] = pod_routes(pair.a.vpp)["10.244.2.0/24"]
    assert path.sw_if_index == wg.sw_if_index and path.next_hop == ipaddress.ip_address("10.244.2.0")
    assert tagged(pair.a.vpp, "vppagent:tun:") == {}  # no clear tunnel alongside
    # pods' GSO frames are cut, and their partial checksums completed, before encryption
    assert emu_feature.enabled(pair.a.emu, wg.sw_if_index) == {
        ("interface-output", "gso"), ("ip4-output", "kpod-csum-ip4"), ("ip6-output", "kpod-csum-ip6")}


# -- toggles, mismatches, bad input --------------------------------------------------------------


def test_live_toggle_through_every_kind_leaves_nothing_behind(make_pair):
    pair = make_pair("ipip")
    pair.program()
    clear = state(pair.a.vpp)
    for kind in ("ipsec", "wireguard", "ipsec", "none"):
        for n in ("node-a", "node-b"):
            pair.cluster.annotate(n, encryption=kind)
        pair.program()
        st = state(pair.a.vpp)
        assert pair.a.feature.pairs == {"node-b": kind}
        if kind == "ipsec":
            assert len(st["sas"]) == 2 and len(st["protections"]) == 1 and not st["wg"]
        elif kind == "wireguard":
            assert not st["sas"] and not st["protections"] and len(st["wg_peers"]) == 1
            assert not st["tunnels"]
    final = state(pair.a.vpp)
    assert final["routes"].keys() == clear["routes"].keys()
    assert final["tunnels"].keys() == clear["tunnels"].keys()
    assert not final["sas"] and not final["wg"] and not final["wg_peers"] and not final["protections"]


def test_mismatch_falls_back_to_clear_with_a_problem(make_pair):
    pair = make_pair("ipip")
    pair.cluster.annotate("node-a", encryption="ipsec")
    pair.program()
    assert pair.a.feature.pairs == {"node-b": "fallback"} and pair.b.feature.pairs == {"node-a": "fallback"}
    assert "EncryptionMismatch" in reasons(pair.a)
    [msg] = [p.message for p in pair.a.problems if p.reason == "EncryptionMismatch"]
    assert "NOT encrypted" in msg
    st = state(pair.a.vpp)
    assert not st["sas"] and list(st["tunnels"]) == ["node-b"]
    assert tunnels.dump_ipip(pair.a.vpp)  # clear ipip tunnel


def test_mismatch_with_encryption_required_drops_the_pair(make_pair):
    pair = make_pair("ipip")
    pair.cluster.annotate("node-a", encryption="ipsec")
    pair.cluster.annotate("node-b", encryption="wireguard", encryption_required="true")
    pair.program()
    for side, cidr in ((pair.a, "10.244.2.0/24"), (pair.b, "10.244.1.0/24")):
        assert side.feature.pairs == {("node-b" if side is pair.a else "node-a"): "blocked"}
        [path] = pod_routes(side.vpp)[cidr]
        assert path.type == PathType.DROP
        st = state(side.vpp)
        assert not st["tunnels"] and not st["sas"] and not st["wg_peers"]
    # Adopted after an agent restart: the drop route is recognised, not re-made.
    pair.a = pair.a.restart_agent(pair.tmp, "ipip", pair.clock)
    result = pair.a.program(pair.cluster)
    assert result.changed == 0
    # Both agree again: encrypted, the drop route is replaced.
    pair.cluster.annotate("node-b", encryption="ipsec")
    pair.program()
    assert pair.a.feature.pairs == {"node-b": "ipsec"}
    [path] = pod_routes(pair.a.vpp)["10.244.2.0/24"]
    assert path.type == PathType.NORMAL


@pytest.mark.parametrize("bad", ["", "!!!not-base64", "AAAA", "A" * 43 + "="])
def test_bad_peer_key_falls_back_and_says_why_without_key_material(make_pair, bad, caplog):
    caplog.set_level(logging.DEBUG)
    pair = make_pair("ipip", encryption="ipsec")
    pair.silent.add("node-b")
    pair.cluster.annotate("node-b", ipsec_public_key=bad)
    pair.program()
    assert pair.a.feature.pairs == {"node-b": "fallback"}
    assert "EncryptionKeyUnavailable" in reasons(pair.a)
    assert not ipsec.dump_sas(pair.a.vpp)
    texts = [p.message for p in pair.a.problems] + [r.getMessage() + str(r.__dict__) for r in caplog.records]
    secrets = [(pair.tmp / n / "keys" / f).read_bytes() for n in ("node-a", "node-b")
               for f in ("ipsec.key", "wireguard.key")]
    for s in secrets:
        for t in texts:
            assert s.hex() not in t and repr(s) not in t
    if bad:
        assert not any(bad in p.message for p in pair.a.problems)


def test_unknown_encryption_value_is_a_problem_and_a_mismatch(make_pair):
    pair = make_pair("ipip", encryption="ipsec")
    pair.cluster.annotate("node-b", encryption="aes-please")
    pair.program()
    assert {"UnknownEncryption", "EncryptionMismatch"} <= reasons(pair.a)
    assert pair.a.feature.pairs == {"node-b": "fallback"}


def test_unpublished_own_key_keeps_pair_clear(make_pair):
    pair = make_pair("ipip", encryption="ipsec")
    pair.silent.add("node-a")
    pair.cluster.annotate("node-a", ipsec_public_key=None)
    pair.program()
    assert pair.a.feature.pairs == {"node-b": "fallback"} and pair.b.feature.pairs == {"node-a": "fallback"}
    assert "EncryptionKeyUnavailable" in reasons(pair.a)
    pair.silent.clear()
    pair.program()
    assert pair.a.feature.pairs == {"node-b": "ipsec"}


def test_key_file_with_wrong_permissions_is_reported_not_replaced(make_pair, tmp_path):
    import os

    pair = make_pair("ipip", encryption="wireguard")
    pair.program()
    keyfile = tmp_path / "node-a" / "keys" / "wireguard.key"
    content = keyfile.read_bytes()
    os.chmod(keyfile, 0o644)
    pair.a = pair.a.restart_agent(tmp_path, "ipip", pair.clock)
    pair.program()
    assert "KeyFileUnusable" in reasons(pair.a) and pair.a.feature.pairs == {"node-b": "fallback"}
    assert keyfile.read_bytes() == content
    assert not wireguard.dump_interfaces(pair.a.vpp)
    assert WIREGUARD_PUBLIC_KEY not in pair.a.feature.annotations()


# -- restart adoption ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,mode", [("none", "ipip"), ("none", "vxlan"), ("ipsec", "ipip"),
                                       ("wireguard", "flat")])
def test_restarted_agent_adopts_everything_without_a_call(make_pair, kind, mode):
    pair = make_pair(mode, encryption=kind)
    pair.program()
    before = state(pair.a.vpp)
    pair.a = pair.a.restart_agent(pair.tmp, mode, pair.clock)
    result = pair.a.program(pair.cluster)
    assert result.changed == 0, result
    assert state(pair.a.vpp) == before


def test_published_annotations_hold_public_data_only(make_pair, tmp_path):
    pair = make_pair("ipip")
    assert pair.a.feature.annotations() == {}  # no encryption asked: no key made, nothing published
    assert not (tmp_path / "node-a" / "keys").exists()
    pair.cluster.annotate("node-a", encryption="ipsec")
    pair.program()
    ann = pair.a.feature.annotations()
    assert set(ann) == {IPSEC_PUBLIC_KEY, WIREGUARD_PUBLIC_KEY, IPSEC_KEY_EPOCH}
    assert pair.cluster.nodes["node-a"].annotations[IPSEC_PUBLIC_KEY] == ann[IPSEC_PUBLIC_KEY]
    priv = (tmp_path / "node-a" / "keys" / "ipsec.key").read_bytes()
    assert all(priv.hex() not in v for v in ann.values())
    assert ann[IPSEC_KEY_EPOCH] == "0"


def test_programming_sas_logs_no_key_material(make_pair, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, vpp_papi's serializer included
    pair = make_pair("ipip", encryption="ipsec")
    pair.program()
    keys = [s.crypto_key for s in ipsec.dump_sas(pair.a.vpp)]
    assert keys
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for k in keys:
        assert k.hex() not in text and repr(k)[2:-1] not in text and str(list(k))[1:-1] not in text


def test_lifetime_rotation_advances_the_epoch_and_rekeys(make_pair):
    from ipsec import Lifetime

    pair = make_pair("ipip")
    assert not pair.a.feature.rotate_if_due()  # no IPsec key yet: nothing to renew
    for n in ("node-a", "node-b"):
        pair.cluster.annotate(n, encryption="ipsec")
    pair.program()
    old_out, _, _ = ipsec_view(pair.a)
    pair.a.feature.settings = dataclasses.replace(pair.a.feature.settings, lifetime=Lifetime(seconds=60))
    assert not pair.a.feature.rotate_if_due(max_sa_bytes=0)
    pair.clock.now += 61
    assert pair.a.feature.rotate_if_due()
    pair.program()  # republished epoch 1: both sides add the new inbound SA
    assert pair.cluster.nodes["node-a"].annotations[IPSEC_KEY_EPOCH] == "1"
    _, b_in, _ = ipsec_view(pair.b)
    assert len(b_in) == 2
    pair.clock.now += 40
    pair.program()
    new_out, a_in, _ = ipsec_view(pair.a)
    assert new_out.spi != old_out.spi and len(a_in) == 1
    # By bytes, before the time is up.
    assert not pair.a.feature.rotate_if_due(max_sa_bytes=10)
    pair.a.feature.settings = dataclasses.replace(pair.a.feature.settings, lifetime=Lifetime(60, bytes=1000))
    assert pair.a.feature.rotate_if_due(max_sa_bytes=1000)
