"""The reconciler's incremental path (``update_desired`` + scoped ``converge``), against the in-memory
VPP of the engine's unit tests: it must end exactly where the full diff ends."""
from __future__ import annotations

import random

import pytest

from tests.reconcile.fakes import BatchThingDescriptor, Clock, FakeVpp, Thing, ThingDescriptor
from vppagent.reconcile import Intent, Key, Reconciler, RetryPolicy
from vppagent.vpp.retvals import Retval


@pytest.fixture(params=["one_by_one", "batched"])
def setup(request):
    vpp = FakeVpp()
    clock = Clock()
    r = Reconciler(vpp, retry=RetryPolicy(initial_s=1.0, max_s=8.0, jitter=0.0), clock=clock,
                   rng=random.Random(0), chunk=3)
    r.register(ThingDescriptor() if request.param == "one_by_one" else BatchThingDescriptor())
    return r, vpp, clock


def it(t: Thing, origin: str | None = None) -> Intent:
    return Intent("thing", t, origin or f"o-{t.name}")


def test_an_update_touches_only_its_key_and_makes_one_call(setup) -> None:
    r, vpp, _ = setup
    r.set_desired([it(Thing(f"t{i}", data=i)) for i in range(100)])
    r.converge()
    before = sum(vpp.calls.values())
    r.update_desired(removed=[it(Thing("t7", data=7))], added=[it(Thing("t7", data=70))])
    res = r.converge()
    assert (res.updated, res.created, res.deleted) == (1, 0, 0)
    assert sum(vpp.calls.values()) - before == 1
    assert vpp.store["t7"][1] == 70 and r.in_sync()
    assert r.converge().calls == 0  # nothing left in scope


def test_removal_takes_its_dependents_and_recreates_wanted_ones(setup) -> None:
    r, vpp, _ = setup
    r.set_desired([it(Thing("base")), it(Thing("user", ref="base")), it(Thing("other"))])
    r.converge()
    # "base" changes in a way that needs a replace: its dependent must go first and come back.
    r.update_desired(removed=[it(Thing("base"))], added=[it(Thing("base", fixed=1))])
    res = r.converge()
    assert res.failed == 0 and r.in_sync()
    ops = [(op, n) for op, n in vpp.log[-4:]]
    assert ops.index(("delete", "user")) < ops.index(("delete", "base")) < ops.index(("create", "base")) \
        < ops.index(("create", "user"))
    r.update_desired(removed=[it(Thing("user", ref="base"))])
    r.converge()
    assert "user" not in vpp.store and "base" in vpp.store and r.in_sync()


def test_failed_objects_stay_in_scope_and_are_retried_when_due(setup) -> None:
    r, vpp, clock = setup
    r.set_desired([it(Thing("a"))])
    r.converge()
    vpp.reject["b"] = int(Retval.NO_SUCH_ENTRY)
    r.update_desired(added=[it(Thing("b"))])
    assert r.converge().failed == 1
    del vpp.reject["b"]
    assert r.converge().calls == 0  # backing off
    clock.now += 2
    res = r.converge()
    assert res.created == 1 and r.in_sync()


def test_objects_waiting_for_a_dependency_stay_in_scope(setup) -> None:
    r, vpp, _ = setup
    r.set_desired([it(Thing("a"))])
    r.converge()
    r.update_desired(added=[it(Thing("child", ref="parent"))])
    res = r.converge()
    assert res.waiting == 1 and "child" not in vpp.store
    r.update_desired(added=[it(Thing("parent"))])  # only the parent is touched now
    r.converge()
    assert "child" in vpp.store and r.in_sync()


def test_a_conflicting_intent_of_another_origin_is_neither_taken_nor_removed(setup) -> None:
    r, vpp, _ = setup
    r.set_desired([it(Thing("vip", data=1), "svc-a")])
    r.converge()
    r.update_desired(added=[it(Thing("vip", data=2), "svc-b")])
    assert r.converge().calls == 0 and vpp.store["vip"][1] == 1
    r.update_desired(removed=[it(Thing("vip", data=2), "svc-b")])  # not what is desired: nothing goes
    assert r.converge().calls == 0 and "vip" in vpp.store
    assert r.desired[Key("thing", "vip")].origin == "svc-a"


def test_resync_makes_the_next_pass_a_full_diff(setup) -> None:
    r, vpp, _ = setup
    r.set_desired([it(Thing(f"t{i}")) for i in range(5)])
    r.converge()
    vpp.store.pop("t3")  # drift behind the agent's back
    assert r.converge().calls == 0  # an incremental pass does not look
    r.needs_resync = True
    res = r.converge()
    assert res.created == 1 and "t3" in vpp.store
