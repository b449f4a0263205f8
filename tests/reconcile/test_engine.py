"""The reconciler engine against an in-memory VPP: ordering, idempotence, failures, resync."""
from __future__ import annotations

import random

import pytest

from vppagent.reconcile import DuplicateKind, Intent, Key, Reconciler, RetryPolicy, UnknownKind, VppUnavailable
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval

from .fakes import BatchThingDescriptor, Clock, FakeVpp, Thing, ThingDescriptor


@pytest.fixture(params=["one_by_one", "batched"])
def setup(request):
    vpp = FakeVpp()
    clock = Clock()
    failures: list = []
    r = Reconciler(vpp, retry=RetryPolicy(initial_s=1.0, max_s=8.0, jitter=0.0), clock=clock,
                   rng=random.Random(0), chunk=3, on_failure=lambda k, o, e: failures.append((k, o, e)))
    r.register(ThingDescriptor() if request.param == "one_by_one" else BatchThingDescriptor())
    return r, vpp, clock, failures


def want(r: Reconciler, *things: Thing) -> None:
    r.set_desired(Intent("thing", t, origin=f"origin-{t.name}") for t in things)


def test_create_before_reference_and_delete_after_unreference(setup) -> None:
    r, vpp, _, _ = setup
    want(r, Thing("route", ref="iface"), Thing("iface"), Thing("nat", ref="route"))
    res = r.converge()
    assert res.created == 3 and res.failed == 0
    created = [n for op, n in vpp.log if op == "create"]
    assert created.index("iface") < created.index("route") < created.index("nat")

    vpp.log.clear()
    want(r)
    res = r.converge()
    assert res.deleted == 3
    deleted = [n for op, n in vpp.log]
    assert deleted.index("nat") < deleted.index("route") < deleted.index("iface")
    assert vpp.store == {}


def test_applying_the_same_desired_state_again_makes_no_call(setup) -> None:
    r, vpp, _, _ = setup
    things = [Thing(f"t{i}", data=i, ref="base" if i else None) for i in range(10)] + [Thing("base")]
    want(r, *things)
    r.converge()
    before = sum(vpp.calls.values())
    want(r, *reversed(things))  # same set, other order
    res = r.converge()
    assert res.calls == 0 and res.changed == 0
    assert sum(vpp.calls.values()) == before
    assert r.in_sync()


def test_changed_value_is_updated_in_place_and_keeps_its_handle(setup) -> None:
    r, vpp, _, _ = setup
    want(r, Thing("a", data=1))
    r.converge()
    handle = r.applied.handle(Key("thing", "a"))
    want(r, Thing("a", data=2))
    res = r.converge()
    assert (res.created, res.updated, res.deleted) == (0, 1, 0)
    assert vpp.store["a"][1] == 2
    assert r.applied.handle(Key("thing", "a")) == handle


def test_change_that_cannot_be_updated_replaces_and_dependents_follow(setup) -> None:
    r, vpp, _, _ = setup
    want(r, Thing("iface", fixed=1), Thing("route", ref="iface"))
    r.converge()
    vpp.log.clear()
    want(r, Thing("iface", fixed=2), Thing("route", ref="iface"))
    res = r.converge()
    # The route referenced the old iface: it goes first and comes back after.
    assert vpp.log == [("delete", "route"), ("delete", "iface"), ("create", "iface"), ("create", "route")]
    assert (res.created, res.deleted) == (2, 2)
    assert r.in_sync()


def test_a_failed_object_is_recorded_and_retried_with_backoff_while_others_converge(setup) -> None:
    r, vpp, clock, failures = setup
    vpp.reject["bad"] = int(Retval.NO_SUCH_FIB)  # retriable: may exist later
    want(r, Thing("good1"), Thing("bad"), Thing("good2"), Thing("needs-bad", ref="bad"))
    res = r.converge()
    assert res.created == 2 and res.failed == 1 and res.waiting == 1
    f = r.failures[Key("thing", "bad")]
    assert isinstance(f.error, VppApiError) and f.error.retval == Retval.NO_SUCH_FIB and f.retriable
    assert f.retry_at == clock.now + 1.0
    assert [(str(k), o) for k, o, _ in failures] == [("thing:bad", "origin-bad")]

    # Not due yet: no call at all.
    calls = sum(vpp.calls.values())
    assert r.converge().calls == 0 and sum(vpp.calls.values()) == calls

    clock.now += 1.0
    r.converge()
    assert r.failures[Key("thing", "bad")].attempts == 2
    assert r.failures[Key("thing", "bad")].retry_at == clock.now + 2.0  # doubled
    assert len(failures) == 1  # reported once, not on every retry

    del vpp.reject["bad"]
    clock.now += 2.0
    res = r.converge()
    assert res.created == 2  # bad, then what waited for it
    assert not r.failures and r.in_sync()


def test_a_rejected_value_waits_for_a_new_value(setup) -> None:
    r, vpp, clock, _ = setup
    vpp.reject["x"] = int(Retval.INVALID_VALUE)
    want(r, Thing("x", data=1))
    r.converge()
    f = r.failures[Key("thing", "x")]
    assert not f.retriable and r.next_retry_at() is None
    clock.now += 3600
    assert r.converge().calls == 0
    del vpp.reject["x"]
    want(r, Thing("x", data=2))  # a new value is tried at once
    assert r.converge().created == 1


def test_object_waits_for_a_dependency_nobody_wants_yet(setup) -> None:
    r, vpp, _, _ = setup
    r.resync()
    want(r, Thing("route", ref="iface"))
    res = r.converge()
    assert res.calls == 0 and res.waiting == 1 and not r.failures
    want(r, Thing("route", ref="iface"), Thing("iface"))
    assert r.converge().created == 2


def test_resync_adopts_matches_deletes_stale_and_recreates_missing(setup) -> None:
    r, vpp, _, _ = setup
    want(r, Thing("keep", data=1), Thing("gone"), Thing("changed", data=1), Thing("stale"))
    r.converge()
    # Another agent instance: fresh engine, same VPP.
    r2 = Reconciler(vpp, chunk=3)
    r2.register(type(r.descriptor("thing"))())
    vpp.store.pop("gone")  # lost in VPP
    vpp.log.clear()
    want(r2, Thing("keep", data=1), Thing("gone"), Thing("changed", data=2))
    res = r2.converge()
    assert sorted(vpp.log) == [("create", "gone"), ("delete", "stale"), ("update", "changed")]
    assert (res.created, res.updated, res.deleted) == (1, 1, 1)
    assert r2.applied.handle(Key("thing", "keep")) == vpp.store["keep"][0]  # handle recorded from the dump


def test_lost_connection_aborts_the_pass_and_forces_a_resync(setup) -> None:
    r, vpp, _, _ = setup
    want(r, Thing("a"))
    r.converge()
    vpp.down = True
    want(r, Thing("a"), Thing("b"))
    with pytest.raises(VppUnavailable):
        r.converge()
    assert r.needs_resync
    vpp.down = False
    dumps = vpp.calls["thing_dump"]
    r.converge()
    assert vpp.calls["thing_dump"] == dumps + 1 and r.in_sync()


def test_kinds_are_registered_once_and_unknown_kinds_are_refused() -> None:
    r = Reconciler(FakeVpp())
    r.register(ThingDescriptor())
    with pytest.raises(DuplicateKind):
        r.register(ThingDescriptor())
    with pytest.raises(UnknownKind):
        r.set_desired([Intent("nope", Thing("x"))])


def test_conflicting_values_for_one_key_keep_the_first() -> None:
    vpp = FakeVpp()
    r = Reconciler(vpp)
    r.register(ThingDescriptor())
    r.set_desired([Intent("thing", Thing("x", data=1), "first"), Intent("thing", Thing("x", data=2), "second")])
    r.converge()
    assert vpp.store["x"][1] == 1
