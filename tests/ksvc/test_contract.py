"""The ksvc binary API contract: the vpp-layer family against the emulator and a real VPP.

Dumps read back exactly what was programmed (backend order too); every
refused message raises a typed error with VPP's retval and the backend at
fault, and changes nothing.
"""
from __future__ import annotations

import ipaddress

import pytest

from vppagent.vpp import interfaces, ksvc
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.ksvc import PROTO_SCTP, PROTO_TCP, PROTO_UDP, KsvcService
from vppagent.vpp.retvals import Retval

A = ipaddress.ip_address


def svc(vip: str, proto: int, port: int, backends: list[tuple[str, int]], timeout: int = 10800) -> KsvcService:
    return KsvcService(A(vip), proto, port, tuple((A(a), p) for a, p in backends), timeout)


WEB = svc("10.96.0.10", PROTO_TCP, 80, [("10.1.0.3", 8080), ("10.1.0.1", 8080), ("10.1.0.2", 8081)], 30)
DNS6 = svc("fd00:96::a", PROTO_UDP, 53, [("fd00:1::5", 5353)], 3)
SCTP = svc("10.96.0.11", PROTO_SCTP, 3868, [("10.1.0.9", 3868), ("10.1.0.8", 3868)], 86400)


def test_available(target, stock):
    assert ksvc.available(target.vpp)
    assert not ksvc.available(stock.vpp)


def test_services_round_trip_replace_and_delete(target):
    vpp = target.vpp
    for s in (WEB, DNS6, SCTP):
        ksvc.service_update(vpp, s)
    assert ksvc.service_dump(vpp) == [WEB, DNS6, SCTP]  # backends in the order given
    # replacing keeps the service's place and swaps backends and timeout at once
    web2 = svc("10.96.0.10", PROTO_TCP, 80, [("10.1.0.7", 9090)], 5)
    ksvc.service_update(vpp, web2)
    assert ksvc.service_dump(vpp) == [web2, DNS6, SCTP]
    # same VIP, other port or protocol: other services
    web_udp = svc("10.96.0.10", PROTO_UDP, 80, [("10.1.0.7", 9090)], 5)
    ksvc.service_update(vpp, web_udp)
    assert len(ksvc.service_dump(vpp)) == 4
    ksvc.service_del(vpp, *DNS6.key)
    assert ksvc.service_dump(vpp) == [web2, SCTP, web_udp]
    with pytest.raises(ksvc.KsvcServiceError) as e:
        ksvc.service_del(vpp, *DNS6.key)
    assert e.value.retval == Retval.NO_SUCH_ENTRY and "fd00:96::a proto 17 port 53" in str(e.value)
    ksvc.service_del(vpp, *DNS6.key, missing_ok=True)
    # a slot freed by a delete is the next one taken, as in the plugin
    ksvc.service_update(vpp, DNS6)
    assert ksvc.service_dump(vpp) == [web2, DNS6, SCTP, web_udp]
    # no backends: allowed (new flows are dropped and counted)
    empty = svc("10.96.0.12", PROTO_TCP, 443, [], 60)
    ksvc.service_update(vpp, empty)
    assert ksvc.service_dump(vpp)[-1] == empty


def test_the_largest_service_fits_in_one_message(target):
    many = KsvcService(A("fd00:96::1"), PROTO_TCP, 443,
                       tuple((A(f"fd00:2::{i:x}"), 8443) for i in range(1, ksvc.MAX_BACKENDS + 1)), 1)
    ksvc.service_update(target.vpp, many)
    assert ksvc.service_dump(target.vpp) == [many]


BAD = {
    # what: (service, retval, failed_at)
    "port 0": (svc("10.96.0.10", PROTO_TCP, 0, [("10.1.0.1", 80)]), Retval.INVALID_VALUE, -1),
    "ICMP": (svc("10.96.0.10", 1, 80, [("10.1.0.1", 80)]), Retval.INVALID_VALUE, -1),
    "timeout 0": (svc("10.96.0.10", PROTO_TCP, 80, [("10.1.0.1", 80)], 0), Retval.INVALID_VALUE, -1),
    "timeout above a day": (svc("10.96.0.10", PROTO_TCP, 80, [("10.1.0.1", 80)], 86401),
                            Retval.INVALID_VALUE, -1),
    "unspecified VIP": (svc("0.0.0.0", PROTO_TCP, 80, [("10.1.0.1", 80)]), Retval.INVALID_VALUE, -1),
    "mixed families": (svc("10.96.0.10", PROTO_TCP, 80, [("10.1.0.1", 80), ("fd00::1", 80)]),
                       Retval.INVALID_VALUE, 1),
    "IPv6 VIP, IPv4 backend": (svc("fd00:96::10", PROTO_TCP, 80, [("10.1.0.1", 80)]), Retval.INVALID_VALUE, 0),
    "backend port 0": (svc("10.96.0.10", PROTO_TCP, 80, [("10.1.0.1", 80), ("10.1.0.2", 80), ("10.1.0.3", 0)]),
                       Retval.INVALID_VALUE, 2),
    "IPv4-mapped backend": (svc("fd00:96::10", PROTO_TCP, 80, [("fd00::1", 80), ("::ffff:10.1.0.1", 80)]),
                            Retval.INVALID_VALUE, 1),
    "duplicate backend": (svc("10.96.0.10", PROTO_TCP, 80, [("10.1.0.1", 80), ("10.1.0.2", 80), ("10.1.0.1", 80)]),
                          Retval.ENTRY_ALREADY_EXISTS, 2),
    "too many backends": (KsvcService(A("10.96.0.10"), PROTO_TCP, 80,
                                      tuple((A(f"10.2.{i >> 8}.{i & 255}"), 80) for i in range(1025)), 5),
                          Retval.INVALID_VALUE_2, -1),
}


@pytest.mark.parametrize("what", list(BAD))
def test_bad_services_are_refused_with_context_and_change_nothing(target, what):
    vpp = target.vpp
    ksvc.service_update(vpp, WEB)
    ksvc.service_update(vpp, DNS6)
    before = ksvc.service_dump(vpp)
    bad, retval, failed_at = BAD[what]
    with pytest.raises(ksvc.KsvcServiceError) as e:
        ksvc.service_update(vpp, bad)
    assert e.value.retval == retval, what
    assert e.value.failed_at == failed_at, what
    assert e.value.context["service"] == str(bad)
    if failed_at >= 0:
        addr, port = bad.backends[failed_at]
        assert e.value.context["backend"] == f"{addr} port {port}"
    assert ksvc.service_dump(vpp) == before  # the existing services are untouched


def test_a_refused_replacement_keeps_the_service_as_it_was(target):
    vpp = target.vpp
    ksvc.service_update(vpp, WEB)
    for backends, timeout in ((WEB.backends + WEB.backends[:1], WEB.timeout_s),  # duplicate
                              (((A("10.1.0.1"), 80), (A("fd00::1"), 80)), WEB.timeout_s),  # mixed
                              (WEB.backends, 0)):  # timeout 0
        with pytest.raises(ksvc.KsvcServiceError):
            ksvc.service_update(vpp, KsvcService(WEB.vip, WEB.proto, WEB.port, backends, timeout))
        assert ksvc.service_dump(vpp) == [WEB]


def test_fields_the_wire_cannot_carry_are_refused_before_sending(target):
    vpp = target.vpp
    for bad in (svc("10.96.0.10", PROTO_TCP, 70000, [("10.1.0.1", 80)]),
                svc("10.96.0.10", 300, 80, [("10.1.0.1", 80)]),
                svc("10.96.0.10", PROTO_TCP, 80, [("10.1.0.1", -1)]),
                svc("10.96.0.10", PROTO_TCP, 80, [("10.1.0.1", 80)], 1 << 32)):
        with pytest.raises(ksvc.KsvcError, match="10.96.0.10 proto"):
            ksvc.service_update(vpp, bad)
    assert ksvc.service_dump(vpp) == []


def test_enable_disable_per_interface_and_interface_delete_forgets(target):
    vpp = target.vpp
    a = interfaces.create_loopback(vpp)
    b = interfaces.create_loopback(vpp)
    try:
        ksvc.enable(vpp, b, True)
        ksvc.enable(vpp, a, True)
        ksvc.enable(vpp, a, True)  # again: no-op
        assert ksvc.interface_dump(vpp) == sorted([a, b])
        ksvc.enable(vpp, a, False)
        ksvc.enable(vpp, a, False)
        assert ksvc.interface_dump(vpp) == [b]
        with pytest.raises(VppApiError) as e:
            ksvc.enable(vpp, 9999, True)
        assert e.value.retval == Retval.INVALID_SW_IF_INDEX
        assert ksvc.interface_dump(vpp) == [b]
    finally:
        interfaces.delete_loopback(vpp, a)
        interfaces.delete_loopback(vpp, b)
    assert ksvc.interface_dump(vpp) == []


def test_stats_start_at_zero(target):
    ksvc.service_update(target.vpp, WEB)
    st = ksvc.stats(target.vpp)
    assert st == ksvc.KsvcStats(*([0] * 12))
