"""The semantics table, exported as shared vectors, runs clean on the reference data-plane model."""
from __future__ import annotations

from pathlib import Path

import pytest

reference = pytest.importorskip("testbed.policy_reference", reason="reference evaluator not present")

from .vectors import generate  # noqa: E402

COMMITTED = Path(__file__).resolve().parents[2] / "vpp_plugins" / "kpol" / "vectors" / "k8s_semantics.txt"


def test_exported_vectors_pass_on_the_reference_model():
    text = generate()
    assert text.count("\npacket ") >= 100
    failures = reference.run_vectors(text, "k8s_semantics")
    assert not failures, "\n".join(map(str, failures))


def test_committed_vector_file_is_current():
    if not COMMITTED.exists():
        pytest.skip(f"{COMMITTED} not committed yet (generate it with python -m tests.policy.vectors)")
    assert COMMITTED.read_text() == generate(), "regenerate with: python -m tests.policy.vectors"
