"""Make-before-break rekeying of one node pair, and this node's key epoch.

Owns: ``RekeyTimers``, ``PairRekey`` (the generations of one pair's keys and
which of them VPP must hold at a given time), ``Lifetime`` (when this node's
keys are due for renewal, by age or by bytes) and ``EpochStore`` (this
node's key epoch, persisted next to the key so that a restarted agent does
not reuse an epoch, i.e. a key, it already used).

How a rekey goes (both nodes run the same schedule, driven by the same
cluster state, without talking to each other):

1. A new generation appears: the peer published a new public key or a new
   epoch, or this node advanced its own epoch (lifetime reached). Both
   nodes see it through the API server within the watch latency.
2. At once, each node adds the new *inbound* SA next to the old one (VPP
   tunnel protection holds up to 4 inbound SAs), and keeps sending with the
   old outbound SA: both old and new are valid.
3. ``switch_after_s`` later (longer than the watch latency between the two
   nodes), each node switches its *outbound* SA to the new one; the peer is
   already accepting it.
4. ``overlap_s`` after the switch the old inbound SA goes; packets in flight
   or from a late peer were accepted until then.

Nothing is lost on a rekey as long as the two nodes see the change less
than ``switch_after_s`` apart. A pair's very first generation (encryption
just turned on) is used at once: there is nothing to overlap with.

Must not touch: VPP (the feature turns ``SaPlan`` into SAs), key material
beyond carrying it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vppagent.atomic import private_dir, write_bytes

from .derive import PairKeys
from .errors import BadAnnotation, KeyFileError

MAX_INBOUND = 4  # VPP's ITP_MAX_N_SA_IN
IPSEC_KEY_EPOCH = "vppagent.io/ipsec-key-epoch"


@dataclass(frozen=True)
class RekeyTimers:
    switch_after_s: float = 5.0
    overlap_s: float = 30.0

    def __post_init__(self) -> None:
        if self.switch_after_s < 0 or self.overlap_s < 0:
            raise ValueError(f"rekey timers must not be negative: {self}")


@dataclass(frozen=True)
class Generation:
    keys: PairKeys
    seen_at: float  # when this node first saw it (monotonic)
    first: bool = False  # the pair's first generation: used at once


@dataclass(frozen=True)
class SaPlan:
    """The SAs VPP must hold for a pair now: one outbound, the inbound ones (newest first)."""

    outbound: PairKeys
    inbound: tuple[PairKeys, ...]


@dataclass
class PairRekey:
    """The generations of one pair's keys, newest first; a pure schedule over a clock value."""

    timers: RekeyTimers = field(default_factory=RekeyTimers)
    generations: list[Generation] = field(default_factory=list)

    def observe(self, keys: PairKeys, now: float) -> bool:
        """Record the generation the cluster state now gives; True if it is a new one."""
        if self.generations and self.generations[0].keys.generation == keys.generation:
            return False
        for g in self.generations:
            if g.keys.generation == keys.generation:
                # Back to a generation still held (a flapping annotation): make it the newest again
                # without restarting its clock.
                self.generations.remove(g)
                self.generations.insert(0, g)
                return True
        self.generations.insert(0, Generation(keys, now, first=not self.generations))
        return True

    def _active_since(self, g: Generation) -> float:
        return g.seen_at if g.first else g.seen_at + self.timers.switch_after_s

    def plan(self, now: float) -> SaPlan | None:
        """What VPP must hold at ``now``; prunes generations that are no longer needed."""
        if not self.generations:
            return None
        gens = self.generations
        # Outbound: the newest generation whose switch time has come; else the oldest held.
        out_i = next((i for i, g in enumerate(gens) if now >= self._active_since(g)), len(gens) - 1)
        since = self._active_since(gens[out_i])
        keep = gens[:out_i + 1]
        if now < since + self.timers.overlap_s:
            keep += gens[out_i + 1:]  # older ones: the peer may still send with them
        # VPP takes at most MAX_INBOUND inbound SAs: drop the oldest that is not outbound.
        while len(keep) > MAX_INBOUND:
            victim = next(i for i in range(len(keep) - 1, -1, -1) if keep[i] is not gens[out_i])
            del keep[victim]
        self.generations = keep
        return SaPlan(gens[out_i].keys, tuple(g.keys for g in keep))

    def next_change(self, now: float) -> float | None:
        """When ``plan`` will next give a different answer (None: not unless the state changes)."""
        times = []
        for g in self.generations:
            t = self._active_since(g)
            if t > now:
                times.append(t)
            if t + self.timers.overlap_s > now and len(self.generations) > 1:
                times.append(t + self.timers.overlap_s)
        return min(times) if times else None


@dataclass(frozen=True)
class Lifetime:
    """When this node's keys must be renewed: by age or by bytes through any one SA."""

    seconds: float = 3600.0
    bytes: int = 1 << 40

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.bytes <= 0:
            raise ValueError(f"key lifetime must be positive: {self}")

    def expired(self, age_s: float, max_sa_bytes: int) -> bool:
        return age_s >= self.seconds or max_sa_bytes >= self.bytes


def parse_epoch(value: str | None, *, node: str) -> int:
    """A node's published key epoch (absent: 0); BadAnnotation if malformed."""
    if value is None:
        return 0
    text = value.strip()
    if not text.isdigit() or len(text) > 18:
        raise BadAnnotation(node, IPSEC_KEY_EPOCH, f"not a non-negative integer ({len(text)} characters)")
    return int(text)


@dataclass(frozen=True)
class EpochStore:
    """This node's key epoch in a small file (not secret, but kept 0600 beside the key)."""

    path: Path

    def load(self) -> int:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return 0
        except OSError as e:
            raise KeyFileError(str(self.path), f"cannot read: {e.strerror}") from None
        if not text.strip().isdigit():
            raise KeyFileError(str(self.path), "not an epoch number (corrupt)")
        return int(text.strip())

    def store(self, epoch: int) -> None:
        private_dir(self.path.parent)  # as the key files' directory (keys.py)
        write_bytes(self.path, f"{epoch}\n".encode())

    def advance(self) -> int:
        """The next epoch, stored before it is returned (so it is never reused after a crash)."""
        epoch = self.load() + 1
        self.store(epoch)
        return epoch
