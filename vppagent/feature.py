"""What the agent asks of a feature: every hook, with what it does when a feature has nothing to say.

Owns: ``Feature``, the base class of the agent's features (pods,
connectivity, services, policies). A feature declares the kinds it watches
and its descriptors and computes its desired objects from the cluster
state; everything else has a default that does nothing, so the agent calls
each hook on every feature without probing for it.

The agent calls them on its one reconciler thread:

- ``bind_vpp`` once, when the agent is built, for features whose desired
  state depends on what VPP offers (a plugin present or not);
- ``start`` once when ``run()`` begins, before the CNI server listens and
  before the first ``desired``: the place for I/O such as opening state on
  disk and recovering from a crash (constructors do none); ``close`` once
  when ``run()`` ends, leaving the data plane as programmed;
- ``desired`` whenever the cluster state changed; it must be a pure function
  of the state (it may memoize). A feature whose ``incremental`` is true also
  answers ``desired_delta(cluster, touched)`` with the intents that changed,
  or None to send the agent down the full path; the others are recomputed
  alone and diffed when a kind they watch changes;
- ``settle`` after every reconcile pass (features with callers waiting on
  their objects: CNI calls);
- ``next_change`` / ``rotate_if_due`` for features whose desired state
  depends on time (IPsec rekeying);
- ``annotations`` for what the feature publishes on this node's Node object
  (never secrets).

Must not touch: the agent's loop, the reconciler's state, Kubernetes.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from vppagent.model.cluster_state import ClusterState
from vppagent.model.k8s import ObjectKey
from vppagent.reconcile import Delta, Descriptor, Intent, Key, Problem
from vppagent.vpp.client import VppClient


class Feature:
    name: str = ""
    watches: tuple[str, ...] = ()
    # Pod is watched across the cluster, not only on this node (policy peers are pods anywhere).
    needs_all_pods: bool = False
    # Features whose own inputs (a CNI call) change this one's desired state too.
    follows: tuple[str, ...] = ()
    # Offers ``desired_delta``.
    incremental: bool = False

    def bind_vpp(self, vpp: VppClient) -> None:
        """The agent's VPP client, before the first ``desired``."""

    def start(self) -> None:
        """Open what the feature keeps outside memory, and recover from a crash."""

    def close(self) -> None:
        """Release what ``start`` opened (safe without ``start``, and twice)."""

    def descriptors(self) -> Sequence[Descriptor[Any]]:
        return ()

    def desired(self, cluster: ClusterState) -> tuple[list[Intent], list[Problem]]:
        raise NotImplementedError(f"feature {self.name!r} computes no desired state")

    def desired_delta(self, cluster: ClusterState, touched: Collection[ObjectKey]) -> Delta | None:
        return None

    def settle(self, applied: Mapping[Key, Any], failures: Mapping[Key, Any], connected: bool) -> None:
        """What the last reconcile pass achieved."""

    def next_change(self) -> float | None:
        """When (``time.monotonic``) the desired state changes by itself; None: never."""
        return None

    def rotate_if_due(self) -> bool:
        """Advance time-driven state (keys) when due; True if the desired state changed."""
        return False

    def annotations(self) -> dict[str, str]:
        """This node's Node annotations the feature publishes."""
        return {}


__all__ = ["Feature"]
