"""ACL family: the same expectations of the emulator and of a real VPP 26.06."""
from __future__ import annotations

import ipaddress

import pytest

from vppagent.vpp import acl, interfaces
from vppagent.vpp.acl import Action, PortRange, Rule
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval

# VPP error codes the shared Retval enum does not name (vnet/error.h).
INVALID_SRC_ADDRESS = Retval.INVALID_SRC_ADDRESS
ACL_IN_USE_INBOUND = Retval.ACL_IN_USE_INBOUND
ACL_IN_USE_OUTBOUND = Retval.ACL_IN_USE_OUTBOUND
# acl_interface_set_acl_list folds a failed list into 1 (rv = rv || ...).
FOLDED_ERROR = 1

TCP, UDP, ICMP = 6, 17, 1

RULES = (
    Rule.of(Action.PERMIT, "10.0.0.0/8", "192.168.1.0/24", TCP, dport=PortRange(80, 80)),
    Rule.of(Action.PERMIT_REFLECT, "0.0.0.0/0", "10.1.0.0/16", UDP, PortRange(1024, 65535), PortRange(53, 53)),
    Rule.of(Action.DENY, "fd00::/8", "::/0", ICMP, PortRange(8, 8), PortRange(0, 0)),
    Rule(Action.PERMIT, ipaddress.ip_network("10.2.0.0/16"), ipaddress.ip_network("10.3.0.0/16"), TCP,
         tcp_flags_mask=0x12, tcp_flags_value=0x02),
    Rule.of(Action.DENY),
)


@pytest.fixture
def acls(vpp):
    """ACL indexes to delete at teardown (unbound from the loopbacks first)."""
    made: list[int] = []
    yield made
    present = {a.index for a in acl.dump_acls(vpp)}
    for i in sorted(set(made)):
        if i in present:
            acl.delete_acl(vpp, i)


@pytest.fixture
def loop(vpp):
    idx = interfaces.create_loopback(vpp)
    yield idx
    if interfaces.get(vpp, idx) is not None:
        acl.clear_interface_acls(vpp, idx)
        interfaces.delete_loopback(vpp, idx)


def test_acl_round_trip_rule_by_rule(vpp, acls):
    idx = acl.add_acl(vpp, RULES, tag="vppagent:policy/ns/allow-web")
    acls.append(idx)
    got = acl.get_acl(vpp, idx)
    assert got is not None
    assert got.index == idx
    assert got.tag == "vppagent:policy/ns/allow-web"
    assert got.rules == RULES
    assert acl.by_tag(vpp, "vppagent:policy/")["vppagent:policy/ns/allow-web"].index == idx
    acl.delete_acl(vpp, idx)
    assert acl.get_acl(vpp, idx) is None


def test_replace_keeps_the_index_and_swaps_rules_and_tag(vpp, acls):
    idx = acl.add_acl(vpp, RULES[:2], tag="before")
    acls.append(idx)
    acl.replace_acl(vpp, idx, RULES[2:], tag="after")
    got = acl.get_acl(vpp, idx)
    assert got == acl.Acl(idx, "after", RULES[2:])


def test_acl_without_rules_is_accepted(vpp, acls):
    idx = acl.add_acl(vpp, [], tag="empty")
    acls.append(idx)
    assert acl.get_acl(vpp, idx) == acl.Acl(idx, "empty", ())


def test_a_freed_acl_index_is_reused(vpp, acls):
    a = acl.add_acl(vpp, RULES[:1])
    b = acl.add_acl(vpp, RULES[:1])
    acls.extend([a, b])
    acl.delete_acl(vpp, a)
    c = acl.add_acl(vpp, RULES[:1])
    acls.append(c)
    assert c == a


def test_replace_of_unknown_acl_is_no_such_entry(vpp):
    with pytest.raises(VppApiError) as e:
        acl.replace_acl(vpp, 4242, RULES[:1])
    assert e.value.retval == Retval.NO_SUCH_ENTRY
    assert e.value.message == "acl_add_replace"


def test_delete_of_unknown_acl_is_no_such_entry(vpp):
    with pytest.raises(VppApiError) as e:
        acl.delete_acl(vpp, 4242)
    assert e.value.retval == Retval.NO_SUCH_ENTRY


def test_mixed_family_rule_is_invalid_src_address(vpp):
    rule = {"is_permit": 1, "src_prefix": ipaddress.ip_network("10.0.0.0/8"),
            "dst_prefix": ipaddress.ip_network("fd00::/8"), "proto": 0,
            "srcport_or_icmptype_first": 0, "srcport_or_icmptype_last": 65535,
            "dstport_or_icmpcode_first": 0, "dstport_or_icmpcode_last": 65535,
            "tcp_flags_mask": 0, "tcp_flags_value": 0}
    with pytest.raises(VppApiError) as e:
        vpp.call("acl_add_replace", acl_index=acl.NEW, tag="", count=1, r=[rule])
    assert e.value.retval == INVALID_SRC_ADDRESS


def test_reversed_port_range_is_invalid_value_2(vpp):
    rule = {"is_permit": 1, "src_prefix": ipaddress.ip_network("10.0.0.0/8"),
            "dst_prefix": ipaddress.ip_network("0.0.0.0/0"), "proto": TCP,
            "srcport_or_icmptype_first": 0, "srcport_or_icmptype_last": 65535,
            "dstport_or_icmpcode_first": 90, "dstport_or_icmpcode_last": 80,
            "tcp_flags_mask": 0, "tcp_flags_value": 0}
    with pytest.raises(VppApiError) as e:
        vpp.call("acl_add_replace", acl_index=acl.NEW, tag="", count=1, r=[rule])
    assert e.value.retval == Retval.INVALID_VALUE_2


def test_tag_takes_63_bytes_and_no_more(vpp, acls):
    # VPP refuses 64 bytes (INVALID_VALUE); the serializer cannot even send them.
    with pytest.raises(ValueError):
        acl.add_acl(vpp, RULES[:1], tag="x" * 64)
    idx = acl.add_acl(vpp, RULES[:1], tag="y" * 63)
    acls.append(idx)
    assert acl.get_acl(vpp, idx).tag == "y" * 63


def test_interface_lists_are_set_dumped_and_cleared(vpp, acls, loop):
    a, b, c = (acl.add_acl(vpp, RULES[:1]) for _ in range(3))
    acls.extend([a, b, c])
    acl.set_interface_acls(vpp, loop, input=[b, a], output=[c])
    assert acl.interface_acls(vpp, loop) == [acl.InterfaceAcls(loop, (b, a), (c,))]
    acl.set_interface_acls(vpp, loop, input=[a])
    assert acl.interface_acls(vpp, loop) == [acl.InterfaceAcls(loop, (a,), ())]
    acl.clear_interface_acls(vpp, loop)
    assert acl.interface_acls(vpp, loop) == [acl.InterfaceAcls(loop, (), ())]


def test_interface_list_dump_covers_every_interface(vpp, loop):
    every = {i.sw_if_index for i in interfaces.dump(vpp)}
    assert {x.sw_if_index for x in acl.interface_acls(vpp)} == every
    assert acl.interface_acls(vpp, 4242) == []


def test_acl_in_use_cannot_be_deleted(vpp, acls, loop):
    a, b = acl.add_acl(vpp, RULES[:1]), acl.add_acl(vpp, RULES[:1])
    acls.extend([a, b])
    acl.set_interface_acls(vpp, loop, input=[a], output=[b])
    with pytest.raises(VppApiError) as e:
        acl.delete_acl(vpp, a)
    assert e.value.retval == ACL_IN_USE_INBOUND
    with pytest.raises(VppApiError) as e:
        acl.delete_acl(vpp, b)
    assert e.value.retval == ACL_IN_USE_OUTBOUND
    acl.clear_interface_acls(vpp, loop)
    acl.delete_acl(vpp, a)
    acl.delete_acl(vpp, b)


def test_applying_an_unknown_acl_changes_nothing(vpp, acls, loop):
    a = acl.add_acl(vpp, RULES[:1])
    acls.append(a)
    acl.set_interface_acls(vpp, loop, input=[a])
    with pytest.raises(VppApiError) as e:
        acl.set_interface_acls(vpp, loop, input=[a, 4242])
    assert e.value.retval == Retval.NO_SUCH_ENTRY
    assert acl.interface_acls(vpp, loop) == [acl.InterfaceAcls(loop, (a,), ())]


def test_acl_twice_in_a_list_fails_after_the_output_list_is_applied(vpp, acls, loop):
    a, b = acl.add_acl(vpp, RULES[:1]), acl.add_acl(vpp, RULES[:1])
    acls.extend([a, b])
    with pytest.raises(VppApiError) as e:
        acl.set_interface_acls(vpp, loop, input=[a, a], output=[b])
    assert e.value.retval == FOLDED_ERROR
    assert acl.interface_acls(vpp, loop) == [acl.InterfaceAcls(loop, (), (b,))]


def test_acl_lists_on_unknown_interface_are_invalid_sw_if_index(vpp):
    with pytest.raises(VppApiError) as e:
        acl.set_interface_acls(vpp, 4242)
    assert e.value.retval == Retval.INVALID_SW_IF_INDEX


def test_deleting_the_interface_unbinds_its_acls(vpp, acls):
    a = acl.add_acl(vpp, RULES[:1])
    acls.append(a)
    idx = interfaces.create_loopback(vpp)
    acl.set_interface_acls(vpp, idx, input=[a], output=[a])
    interfaces.delete_loopback(vpp, idx)
    acl.delete_acl(vpp, a)  # no longer in use
    assert acl.get_acl(vpp, a) is None
