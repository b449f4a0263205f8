"""Reject routes for service VIPs, and ClientIP affinity through the ksvc plugin, on the emulator.

The emulator serves VPP 26.06's definitions plus our plugins' (so ``ksvc``
is there), or VPP's alone (stock: affinity falls back to cnat's source hash).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from testbed import targets
from tests.services.conftest import Driver
from tests.services.helpers import Protocol, delete, ep, eps, ip, port, svc, upsert
from vppagent.model.k8s import Service, SessionAffinity
from vppagent.services import affinity_kind, reject_kind
from vppagent.vpp import cnat, ksvc, routes


@pytest.fixture(params=["with-ksvc", "stock"])
def target(request, tmp_short: Path) -> Iterator:
    with ExitStack() as stack:
        yield targets.emulator(stack, tmp_short, with_plugins=request.param == "with-ksvc",
                               client=targets.any_client())


def driver_for(vpp, **kw) -> Driver:
    d = Driver(vpp, reject_vips=True, **kw)
    d.feature.bind_vpp(vpp)
    return d


def unreachable(vpp) -> set[str]:
    out = set()
    for v6 in (False, True):
        for r in routes.dump(vpp, 0, ipv6=v6):
            if r.paths and all(p.type == routes.PathType.ICMP_UNREACH for p in r.paths):
                out.add(str(r.prefix))
    return out


def sticky(name: str, ip: str, timeout: int | None = 30) -> Service:
    import dataclasses

    return dataclasses.replace(svc(name, ips=(ip,)), session_affinity=SessionAffinity.CLIENT_IP,
                               session_affinity_timeout_s=timeout)


def test_every_owned_service_vip_gets_one_reject_route_until_its_last_service_goes(target) -> None:
    d = driver_for(target.vpp)
    d.full()
    empty = upsert(d.cluster, svc("empty", ips=("10.96.0.20",)))
    full = upsert(d.cluster, svc("full", ips=("10.96.0.21",)))
    upsert(d.cluster, eps("full-a", "full", [ep("10.244.1.5")]))
    # Two Services sharing an external IP (different ports).
    shared = (ip("203.0.113.7"),)
    a = upsert(d.cluster, svc("ext-a", ips=("10.96.0.22",), external_ips=shared))
    b = upsert(d.cluster, svc("ext-b", ips=("10.96.0.23",), ports=[port("p", Protocol.TCP, 81)], external_ips=shared))
    assert d.changed(empty, full, a, b).failed == 0
    want = {"10.96.0.20/32", "10.96.0.21/32", "10.96.0.22/32", "10.96.0.23/32", "203.0.113.7/32"}
    assert unreachable(target.vpp) == want
    # The Service with endpoints is translated as well: the route only meets what cnat leaves.
    assert {str(t.vip.address) for t in cnat.dump_translations(target.vpp)} == {"10.96.0.21"}
    # One of the two sharing the external IP goes: the route stays for the other.
    assert d.changed(delete(d.cluster, svc("ext-a", ips=("10.96.0.22",), external_ips=shared))).failed == 0
    assert unreachable(target.vpp) == want - {"10.96.0.22/32"}
    assert d.changed(delete(d.cluster, svc("ext-b", ips=("10.96.0.23",), external_ips=shared))).failed == 0
    assert unreachable(target.vpp) == want - {"10.96.0.22/32", "10.96.0.23/32", "203.0.113.7/32"}
    # A fresh agent's full path agrees, and adopts the routes with no call.
    fresh = driver_for(target.vpp)
    fresh.cluster = d.cluster
    before = fresh.calls()
    assert fresh.full().created == 0
    assert fresh.mutating_since(before) == {}


def test_a_reject_route_is_the_agents_only_inside_its_ranges(target) -> None:
    foreign = ipaddress.ip_network("198.51.100.9/32")
    routes.add(target.vpp, routes.Route(foreign, (routes.Path(type=routes.PathType.ICMP_UNREACH),), 0))
    d = driver_for(target.vpp)
    d.full()
    assert "198.51.100.9/32" in unreachable(target.vpp)  # not in the service CIDRs: never touched


def test_client_ip_affinity_goes_to_ksvc_when_vpp_has_it(target) -> None:
    d = driver_for(target.vpp)
    d.full()
    k = upsert(d.cluster, sticky("sticky", "10.96.0.30", timeout=2))
    e = upsert(d.cluster, eps("sticky-a", "sticky", [ep("10.244.1.5"), ep("10.244.1.6")]))
    assert d.changed(k, e).failed == 0
    if target.name == "emulator":
        assert [(str(s.vip), s.port, s.timeout_s, [str(a) for a, _ in s.backends]) for s in ksvc.service_dump(
            target.vpp)] == [("10.96.0.30", 80, 2, ["10.244.1.5", "10.244.1.6"])]
        assert "10.96.0.30" not in {str(t.vip.address) for t in cnat.dump_translations(target.vpp)}
        # One endpoint change: one ksvc update (backends and timeout in one message).
        before = d.calls()
        e = upsert(d.cluster, eps("sticky-a", "sticky", [ep("10.244.1.5")]))
        assert d.changed(e).failed == 0
        assert d.all_calls_since(before) == {"ksvc_service_update": 1}
        # No timeout given: Kubernetes' default.
        assert d.changed(upsert(d.cluster, sticky("sticky", "10.96.0.30", timeout=None))).failed == 0
        assert [s.timeout_s for s in ksvc.service_dump(target.vpp)] == [affinity_kind.DEFAULT_TIMEOUT_S]
        # Affinity dropped: back to cnat.
        assert d.changed(upsert(d.cluster, svc("sticky", ips=("10.96.0.30",)))).failed == 0
        assert ksvc.service_dump(target.vpp) == []
        assert "10.96.0.30" in {str(t.vip.address) for t in cnat.dump_translations(target.vpp)}
    else:
        # Stock VPP: cnat, hashing on the client's address.
        assert "10.96.0.30" in {str(t.vip.address) for t in cnat.dump_translations(target.vpp)}
    assert reject_kind.KIND and unreachable(target.vpp) >= {"10.96.0.30/32"}
