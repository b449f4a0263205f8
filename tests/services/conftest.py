"""Fixtures for the services tests: the VPP API emulator (a test double of VPP speaking its real
socket protocol, used through the real client), and a driver that runs the services feature
through the reconciler the way the agent's loop does (full path first, then incremental)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from tests.cluster import mutating
from tests.services.helpers import CLUSTER_CIDRS, EXTERNAL_CIDRS, ME, SERVICE_CIDRS, cluster
from vppagent.reconcile import PassResult, Problem, Reconciler
from vppagent.services import ServiceTranslations
from vppagent.vpp.client import VppClient


class Driver:
    """ClusterState -> ServiceTranslations -> Reconciler -> VPP, as the agent's loop drives them."""

    def __init__(self, vpp: VppClient, **feature_kw):
        kw = dict(external_cidrs=EXTERNAL_CIDRS, node_name=ME, snat=False, cluster_cidrs=CLUSTER_CIDRS)
        kw.update(feature_kw)
        self.vpp = vpp
        self.feature = ServiceTranslations(SERVICE_CIDRS, **kw)
        self.reconciler = Reconciler(vpp)
        for d in self.feature.descriptors():
            self.reconciler.register(d)
        self.cluster = cluster()
        self.problems: list[Problem] = []
        self.full_passes = 0

    def full(self) -> PassResult:
        intents, self.problems = self.feature.desired(self.cluster)
        self.reconciler.set_desired(intents)
        self.full_passes += 1
        return self.reconciler.converge()

    def changed(self, *keys) -> PassResult:
        """The incremental path for objects ``keys`` (already applied to ``self.cluster``)."""
        delta = self.feature.desired_delta(self.cluster, set(keys))
        if delta is None:
            return self.full()
        self.reconciler.update_desired(delta.removed, delta.added)
        self.problems = delta.problems
        return self.reconciler.converge()

    def calls(self) -> Counter[str]:
        return Counter(self.vpp.calls)

    def mutating_since(self, before: Counter[str]) -> dict[str, int]:
        return mutating(self.calls(), before)

    def all_calls_since(self, before: Counter[str]) -> dict[str, int]:
        now = self.calls()
        return {k: now[k] - before.get(k, 0) for k in now if now[k] - before.get(k, 0)}


@pytest.fixture
def driver(vpp: VppClient) -> Iterator[Driver]:  # noqa: F811 - the fixture imported above
    yield Driver(vpp)
