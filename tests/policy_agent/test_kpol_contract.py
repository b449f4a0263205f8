"""The kpol binary API contract: the vpp-layer family against the emulator and a real VPP.

Every refused message must change nothing; dumps must read back exactly what
was programmed; counters must count (emulator: through its test-only packet
hook; real VPP: only that they exist and start at zero).
"""
from __future__ import annotations

import ipaddress

import pytest

from testbed.emulator.handlers import kpol as emu_kpol
from vppagent.policy.ir import Packet
from vppagent.vpp import interfaces, kpol
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.kpol import Dir, Item, ItemType, Member, SetKind
from vppagent.vpp.retvals import Retval

A = ipaddress.ip_address


def _state(vpp):
    return (kpol.dump_ipsets(vpp), kpol.dump_policies(vpp), kpol.attachments(vpp))


def _rule(d: Dir, any_peer: bool = False) -> Item:
    return Item(ItemType.RULE, d, any_peer)


def test_available(target, stock):
    assert kpol.available(target.vpp)
    assert not kpol.available(stock.vpp)


def test_sets_members_roundtrip_and_all_or_nothing(target):
    vpp = target.vpp
    kpol.ipset_add(vpp, 1, SetKind.ADDR)
    kpol.ipset_add(vpp, 2, SetKind.NET)
    kpol.ipset_add(vpp, 3, SetKind.ADDR_PORT)
    kpol.members_add(vpp, 1, [Member(A("10.0.0.1")), Member(A("10.0.0.2")), Member(A("fd00::5"))])
    kpol.members_add(vpp, 2, [Member.net("10.1.0.0/16"), Member.net("10.1.2.0/24", exclude=True)])
    kpol.members_add(vpp, 3, [Member(A("10.0.0.1"), proto=6, port=8080)])
    sets = {s.set_id: s for s in kpol.dump_ipsets(vpp)}
    assert {k: s.kind for k, s in sets.items()} == {1: SetKind.ADDR, 2: SetKind.NET, 3: SetKind.ADDR_PORT}
    assert sets[1].members == {Member(A("10.0.0.1")), Member(A("10.0.0.2")), Member(A("fd00::5"))}
    assert sets[2].members == {Member.net("10.1.0.0/16"), Member.net("10.1.2.0/24", exclude=True)}
    assert sets[3].members == {Member(A("10.0.0.1"), proto=6, port=8080)}
    assert [s.set_id for s in kpol.dump_ipsets(vpp, 2)] == [2]

    before = _state(vpp)
    # a duplicate in the middle of a batch: nothing of the batch stays
    with pytest.raises(kpol.KpolMembersError) as e:
        kpol.members_add(vpp, 1, [Member(A("10.0.0.3")), Member(A("10.0.0.1")), Member(A("10.0.0.9"))])
    assert e.value.retval == Retval.ENTRY_ALREADY_EXISTS and e.value.context["member"].find("10.0.0.1") >= 0
    # a missing member in a delete: nothing deleted
    with pytest.raises(kpol.KpolMembersError) as e:
        kpol.members_del(vpp, 1, [Member(A("10.0.0.2")), Member(A("10.0.0.77"))])
    assert e.value.retval == Retval.NO_SUCH_ENTRY
    # a prefix with host bits set is refused before anything is applied
    with pytest.raises(kpol.KpolMembersError) as e:
        kpol.members_add(vpp, 2, [Member.net("10.9.0.0/16"), Member(A("10.9.0.1"), 16)])
    assert e.value.retval == Retval.INVALID_VALUE
    # an IPv6 member the core would read as IPv4 (IPv4-mapped, ::ffff:a.b.c.d) is refused, by index
    # (kpol core's fuzz_wire.c found it taken as 10.0.0.7)
    with pytest.raises(kpol.KpolMembersError) as e:
        kpol.members_add(vpp, 1, [Member(A("fd00::7")), Member(A("::ffff:10.0.0.7"))])
    assert e.value.retval == Retval.INVALID_VALUE and "::ffff:a00:7" in e.value.context["member"]
    with pytest.raises(VppApiError) as e2:
        kpol.members_add(vpp, 99, [Member(A("10.0.0.1"))])
    assert e2.value.retval == Retval.NO_SUCH_ENTRY
    with pytest.raises(VppApiError) as e2:
        kpol.ipset_add(vpp, 1, SetKind.NET)
    assert e2.value.retval == Retval.ENTRY_ALREADY_EXISTS
    assert _state(vpp) == before

    kpol.members_del(vpp, 1, [Member(A("10.0.0.2"))])
    assert next(s for s in kpol.dump_ipsets(vpp, 1)).members == {Member(A("10.0.0.1")), Member(A("fd00::5"))}


def _policy_items(addr_set: int, ap_set: int) -> list[Item]:
    return [
        _rule(Dir.INGRESS), Item(ItemType.PEER, Dir.INGRESS, set_id=addr_set),
        Item(ItemType.PORTS, Dir.INGRESS, proto=6, lo=80, hi=80),
        Item(ItemType.PEER_PORT, Dir.INGRESS, set_id=ap_set),
        _rule(Dir.INGRESS, any_peer=True), Item(ItemType.PORTS, Dir.INGRESS, proto=17, lo=53, hi=53),
        _rule(Dir.EGRESS, any_peer=True),
    ]


def test_policies_attachments_and_refusals(target):
    vpp = target.vpp
    kpol.ipset_add(vpp, 10, SetKind.ADDR)
    kpol.ipset_add(vpp, 11, SetKind.ADDR_PORT)
    items = _policy_items(10, 11)
    kpol.policy_set(vpp, 7, True, True, items)
    [p] = kpol.dump_policies(vpp)
    assert (p.policy_id, p.ingress_isolated, p.egress_isolated, p.items) == (7, True, True, tuple(items))
    sw = interfaces.create_loopback(vpp)
    kpol.attach(vpp, sw, 7)
    assert kpol.attachments(vpp) == {sw: 7}
    before = _state(vpp)
    refusals = [
        (lambda: kpol.ipset_del(vpp, 10), Retval.INSTANCE_IN_USE),  # named by policy 7
        (lambda: kpol.policy_del(vpp, 7), Retval.INSTANCE_IN_USE),  # attached
        (lambda: kpol.policy_set(vpp, 8, True, False, [Item(ItemType.PEER, set_id=10)]), Retval.INVALID_VALUE),
        (lambda: kpol.policy_set(vpp, 8, False, False, [_rule(Dir.INGRESS)]), Retval.INVALID_VALUE),
        (lambda: kpol.policy_set(vpp, 8, True, False, [_rule(Dir.INGRESS), Item(ItemType.PEER, set_id=99)]),
         Retval.NO_SUCH_ENTRY),
        (lambda: kpol.policy_set(vpp, 8, True, False, [_rule(Dir.INGRESS), Item(ItemType.PEER, set_id=11)]),
         -150),  # INVALID_VALUE_3: a peer naming an address+port set
        (lambda: kpol.policy_set(vpp, 8, True, False, [_rule(Dir.INGRESS),
                                                       Item(ItemType.PORTS, proto=6, lo=90, hi=80)]),
         Retval.INVALID_VALUE),
        (lambda: kpol.policy_set(vpp, 8, True, False, [_rule(Dir.INGRESS, True),
                                                       Item(ItemType.PEER, set_id=10)]), Retval.INVALID_VALUE),
        (lambda: kpol.attach(vpp, sw, 99), Retval.NO_SUCH_ENTRY),
        (lambda: kpol.attach(vpp, 12345, 7), Retval.INVALID_SW_IF_INDEX),
        (lambda: kpol.policy_del(vpp, 99), Retval.NO_SUCH_ENTRY),
    ]
    for call, retval in refusals:
        with pytest.raises(VppApiError) as e:
            call()
        assert e.value.retval == retval, (e.value, retval)
        assert _state(vpp) == before
    with pytest.raises(kpol.KpolError):
        kpol.policy_set(vpp, kpol.MAX_POLICY_ID, True, True, [])
    # replace in place, detach, delete in dependency order
    kpol.policy_set(vpp, 7, True, False, items[:4])
    assert kpol.dump_policies(vpp, 7)[0].items == tuple(items[:4])
    kpol.detach(vpp, sw)
    assert kpol.attachments(vpp) == {}
    with pytest.raises(VppApiError):
        kpol.detach(vpp, sw)
    kpol.detach(vpp, sw, missing_ok=True)
    kpol.policy_del(vpp, 7)
    kpol.ipset_del(vpp, 10)
    kpol.ipset_del(vpp, 11)
    assert _state(vpp) == ([], [], {})


def test_deleting_an_interface_detaches(target):
    vpp = target.vpp
    kpol.policy_set(vpp, 1, True, False, [])
    sw = interfaces.create_loopback(vpp)
    kpol.attach(vpp, sw, 1)
    interfaces.delete_loopback(vpp, sw)
    assert kpol.attachments(vpp) == {}
    kpol.policy_del(vpp, 1)  # no longer attached


def test_counters(target):
    vpp = target.vpp
    kpol.ipset_add(vpp, 1, SetKind.ADDR)
    kpol.members_add(vpp, 1, [Member(A("10.0.0.1"))])
    kpol.policy_set(vpp, 3, True, False, [_rule(Dir.INGRESS), Item(ItemType.PEER, set_id=1),
                                          Item(ItemType.PORTS, proto=6, lo=80, hi=80)])
    [c] = kpol.counters(vpp, 3)
    assert (c.policy_id, c.dir, c.counts) == (3, Dir.INGRESS, (0, 0))
    stats = kpol.flow_stats(vpp)
    assert stats.flows == 0
    if target.emu is None:
        return  # a real VPP counts packets only; the podnet test sends real ones
    sw = interfaces.create_loopback(vpp)
    kpol.attach(vpp, sw, 3)
    pod = A("10.0.9.9")
    ok = Packet(A("10.0.0.1"), pod, 6, 40000, 80)
    assert emu_kpol.evaluate(target.emu, sw, "ingress", ok).allowed
    assert emu_kpol.evaluate(target.emu, sw, "ingress", ok).allowed  # flow hit
    assert emu_kpol.evaluate(target.emu, sw, "egress", Packet(pod, A("10.0.0.1"), 6, 80, 40000)).reason == "reply"
    denied = emu_kpol.evaluate(target.emu, sw, "ingress", Packet(A("10.0.0.2"), pod, 6, 40000, 80))
    assert not denied.allowed and denied.reason == "default-deny"
    [c] = kpol.counters(vpp, 3)
    assert c.denied == 1 and c.allowed_by_rule == (2,)
    stats = kpol.flow_stats(vpp)
    assert (stats.flows, stats.flows_created, stats.flow_hits, stats.reply_hits) == (1, 1, 1, 1)
