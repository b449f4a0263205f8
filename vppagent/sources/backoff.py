"""Exponential backoff with jitter, for retrying a failing API server.

Owns: the delay sequence only. Sleeping, and deciding what counts as a
failure, belong to the caller. No global random state: the caller may pass
its own ``random.Random`` (tests pass a seeded one).
"""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    initial_s: float = 0.5
    max_s: float = 30.0
    multiplier: float = 2.0
    # Each delay is drawn from [d * (1 - jitter), d]: spreads the retries of
    # every agent in a cluster after an API server restart, never exceeds max_s.
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not (0 < self.initial_s <= self.max_s and self.multiplier >= 1 and 0 <= self.jitter < 1):
            raise ValueError(f"invalid backoff policy {self}")


class Backoff:
    """Delays of a run of consecutive failures; ``reset()`` after a success."""

    def __init__(self, policy: BackoffPolicy, rng: random.Random | None = None):
        self.policy = policy
        self._rng = rng or random.Random()
        self.failures = 0

    def next_delay(self) -> float:
        p = self.policy
        base = min(p.max_s, p.initial_s * p.multiplier ** min(self.failures, 64))
        self.failures += 1
        return base * (1 - p.jitter * self._rng.random())

    def reset(self) -> None:
        self.failures = 0
