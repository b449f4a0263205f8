"""Which encryption a node pair uses, from the two Nodes' annotations (pure logic).

Owns the annotation names, ``PairDecision`` and ``decide``. The rules
(issue 7): a pair is encrypted when both nodes ask for the same kind
(``vppagent.io/encryption``: none | ipsec | wireguard) and both keys are
usable; otherwise it falls back to clear, with a Problem (an Event) and a
metric, unless either node sets ``vppagent.io/encryption-required: "true"``,
in which case the pair's traffic is dropped, never sent in clear.

Fail-closed choices: an unknown encryption value counts as a mismatch (the
operator asked for *something*), and an ``encryption-required`` value other
than "true"/"false" counts as "true".

Must not touch: keys (the caller says whether they are usable), VPP.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vppagent.model.k8s import Node
from vppagent.reconcile import Problem

ENCRYPTION = "vppagent.io/encryption"
ENCRYPTION_REQUIRED = "vppagent.io/encryption-required"
KINDS = ("none", "ipsec", "wireguard")

# Outcomes of a pair.
CLEAR = "none"
IPSEC = "ipsec"
WIREGUARD = "wireguard"
FALLBACK = "fallback"  # clear, though one side asked for encryption
BLOCKED = "blocked"  # dropped: encryption required and not possible
OUTCOMES = (CLEAR, IPSEC, WIREGUARD, FALLBACK, BLOCKED)


@dataclass(frozen=True)
class NodeEncryption:
    """What one node asks for, as read from its annotations."""

    kind: str  # one of KINDS, or "invalid"
    required: bool
    problems: tuple[Problem, ...] = ()


def read(node: Node, default: str = "none") -> NodeEncryption:
    ann: Mapping[str, str] = node.annotations
    problems: list[Problem] = []
    raw = ann.get(ENCRYPTION, default).strip().lower()
    kind = raw if raw in KINDS else "invalid"
    if kind == "invalid":
        problems.append(Problem(node.key, "UnknownEncryption",
                                f"annotation {ENCRYPTION} must be one of {', '.join(KINDS)} "
                                f"(got {len(raw)} characters); treated as a mismatch"))
    req_raw = ann.get(ENCRYPTION_REQUIRED, "false").strip().lower()
    required = req_raw != "false"
    if req_raw not in ("true", "false"):
        problems.append(Problem(node.key, "InvalidEncryptionRequired",
                                f"annotation {ENCRYPTION_REQUIRED} must be \"true\" or \"false\"; "
                                "treated as \"true\" (fail closed)"))
    return NodeEncryption(kind, required, tuple(problems))


@dataclass(frozen=True)
class PairDecision:
    outcome: str  # one of OUTCOMES
    problem: Problem | None = None


def decide(local: Node, local_enc: NodeEncryption, peer: Node, peer_enc: NodeEncryption,
           key_problem: str | None = None) -> PairDecision:
    """The pair's outcome. ``key_problem``: why the agreed kind's keys are unusable, if they are."""
    required = local_enc.required or peer_enc.required
    if local_enc.kind == peer_enc.kind and local_enc.kind in (IPSEC, WIREGUARD):
        if key_problem is None:
            return PairDecision(local_enc.kind)
        why, reason = f"{local_enc.kind} keys unusable: {key_problem}", "EncryptionKeyUnavailable"
    elif local_enc.kind == peer_enc.kind == "none":
        return PairDecision(CLEAR)
    else:
        why = (f"encryption mismatch: {local.name} asks for {local_enc.kind}, "
               f"{peer.name} for {peer_enc.kind}")
        reason = "EncryptionMismatch"
    if required:
        return PairDecision(BLOCKED, Problem(peer.key, reason,
                                             f"{why}; encryption is required, traffic between "
                                             f"{local.name} and {peer.name} is dropped"))
    return PairDecision(FALLBACK, Problem(peer.key, reason,
                                          f"{why}; traffic between {local.name} and {peer.name} "
                                          "is NOT encrypted"))
