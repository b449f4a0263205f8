"""Interfaces family: the same expectations of the emulator and of a real VPP."""
from __future__ import annotations

import ipaddress

import pytest

from vppagent.vpp import interfaces
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval


@pytest.fixture
def loop(vpp):
    idx = interfaces.create_loopback(vpp)
    yield idx
    if interfaces.get(vpp, idx) is not None:
        interfaces.delete_loopback(vpp, idx)


def test_loopback_appears_in_dump_and_goes_away(vpp):
    idx = interfaces.create_loopback(vpp, mac="02:fe:00:00:00:01")
    i = interfaces.get(vpp, idx)
    assert i is not None
    assert i.name.startswith("loop")
    assert i.mac == "02:fe:00:00:00:01"
    assert not i.admin_up
    interfaces.delete_loopback(vpp, idx)
    assert interfaces.get(vpp, idx) is None


def test_loopback_instance_is_named_after_it_and_duplicates_are_refused(vpp):
    idx = interfaces.create_loopback(vpp, instance=4242)
    try:
        assert interfaces.get(vpp, idx).name == "loop4242"
        with pytest.raises(VppApiError) as e:
            interfaces.create_loopback(vpp, instance=4242)
        assert e.value.retval == Retval.INVALID_REGISTRATION
        assert e.value.message == "create_loopback_instance"
    finally:
        interfaces.delete_loopback(vpp, idx)


def test_admin_up_and_down(vpp, loop):
    interfaces.set_admin_up(vpp, loop)
    assert interfaces.get(vpp, loop).admin_up
    interfaces.set_admin_up(vpp, loop, False)
    assert not interfaces.get(vpp, loop).admin_up


def test_mtu_is_set_and_read_back(vpp, loop):
    interfaces.set_mtu(vpp, loop, 1400)
    assert interfaces.get(vpp, loop).mtu == 1400


def test_tag_set_read_and_cleared(vpp, loop):
    interfaces.set_tag(vpp, loop, "vppagent:ns/pod")
    assert interfaces.get(vpp, loop).tag == "vppagent:ns/pod"
    assert interfaces.by_tag(vpp, "vppagent:")["vppagent:ns/pod"].sw_if_index == loop
    interfaces.clear_tag(vpp, loop)
    assert interfaces.get(vpp, loop).tag == ""


def test_name_filter_dump(vpp, loop):
    name = interfaces.get(vpp, loop).name
    found = interfaces.dump(vpp, name_filter=name)
    assert [i.sw_if_index for i in found] == [loop]


def test_addresses_v4_v6_added_listed_removed(vpp, loop):
    interfaces.add_address(vpp, loop, "10.77.0.1/24")
    interfaces.add_address(vpp, loop, "fd00:77::1/64")
    got = set(interfaces.addresses(vpp, loop))
    assert {ipaddress.ip_interface("10.77.0.1/24"), ipaddress.ip_interface("fd00:77::1/64")} <= got
    interfaces.del_address(vpp, loop, "10.77.0.1/24")
    interfaces.del_address(vpp, loop, "fd00:77::1/64")
    assert not [a for a in interfaces.addresses(vpp, loop) if not a.ip.is_link_local]


def test_deleting_an_address_it_does_not_have_fails(vpp, loop):
    with pytest.raises(VppApiError) as e:
        interfaces.del_address(vpp, loop, "10.78.0.1/24")
    assert e.value.retval == Retval.ADDRESS_NOT_FOUND_FOR_INTERFACE


def test_table_binding(vpp, loop):
    from vppagent.vpp import routes

    routes.add_table(vpp, 77)
    try:
        interfaces.set_table(vpp, loop, 77)
        assert interfaces.get_table(vpp, loop) == 77
        interfaces.set_table(vpp, loop, 0)
    finally:
        routes.delete_table(vpp, 77)


def test_binding_to_a_missing_table_fails(vpp, loop):
    with pytest.raises(VppApiError) as e:
        interfaces.set_table(vpp, loop, 4711)
    assert e.value.retval == Retval.NO_SUCH_FIB


def test_unnumbered_borrows_and_returns(vpp, loop):
    donor = interfaces.create_loopback(vpp)
    try:
        interfaces.add_address(vpp, donor, "10.79.0.1/32")
        interfaces.set_unnumbered(vpp, loop, borrow_from=donor)
        assert interfaces.unnumbered(vpp).get(loop) == donor
        interfaces.set_unnumbered(vpp, loop, borrow_from=donor, enable=False)
        assert loop not in interfaces.unnumbered(vpp)
        interfaces.del_address(vpp, donor, "10.79.0.1/32")
    finally:
        interfaces.delete_loopback(vpp, donor)


def test_rx_mode_applies_to_every_queue_of_an_interface(vpp, loop):
    # A loopback has no rx queues: VPP changes none and says so with success.
    interfaces.set_rx_mode(vpp, loop, interfaces.RxMode.POLLING)
    with pytest.raises(VppApiError) as e:
        interfaces.set_rx_mode(vpp, 99999, interfaces.RxMode.INTERRUPT)
    assert e.value.retval == Retval.INVALID_SW_IF_INDEX


@pytest.mark.parametrize("call", [
    lambda vpp: interfaces.set_admin_up(vpp, 99999),
    lambda vpp: interfaces.set_mtu(vpp, 99999, 1500),
    lambda vpp: interfaces.set_tag(vpp, 99999, "x"),
    lambda vpp: interfaces.add_address(vpp, 99999, "10.0.0.1/24"),
    lambda vpp: interfaces.delete_loopback(vpp, 99999),
])
def test_unknown_sw_if_index_is_rejected(vpp, call):
    with pytest.raises(VppApiError) as e:
        call(vpp)
    assert e.value.retval == Retval.INVALID_SW_IF_INDEX
    assert e.value.error_name == "INVALID_SW_IF_INDEX"
    assert e.value.context.get("sw_if_index") == 99999
