"""Kubernetes label selectors as frozen values, with matching.

Owns: ``LabelSelector`` and ``Requirement`` (the ``matchLabels`` /
``matchExpressions`` form used by NetworkPolicy and friends), their
validation and ``matches(labels)`` semantics, which follow
k8s.io/apimachinery/pkg/labels exactly:

- ``In``: the key is present and its value is one of the values;
- ``NotIn``: the key is absent, or its value is none of the values;
- ``Exists`` / ``DoesNotExist``: the key is present / absent;
- all terms are ANDed; an empty selector matches everything.

Must not touch: which objects a selector is applied to (policy code does).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .fields import EMPTY_MAP, FrozenMap, Reader


class Operator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


@dataclass(frozen=True)
class Requirement:
    """One ``matchExpressions`` term."""

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator is Operator.IN:
            return self.key in labels and labels[self.key] in self.values
        if self.operator is Operator.NOT_IN:
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator is Operator.EXISTS:
            return self.key in labels
        return self.key not in labels

    def __str__(self) -> str:
        vals = ",".join(sorted(self.values))
        if self.operator is Operator.IN:
            return f"{self.key} in ({vals})"
        if self.operator is Operator.NOT_IN:
            return f"{self.key} notin ({vals})"
        if self.operator is Operator.EXISTS:
            return self.key
        return f"!{self.key}"


@dataclass(frozen=True)
class LabelSelector:
    """A validated label selector; equal selectors compare and hash equal."""

    match_labels: FrozenMap = EMPTY_MAP
    # Sorted, so that the order terms were written in does not make two
    # equal selectors unequal (that would cause spurious policy updates).
    match_expressions: tuple[Requirement, ...] = ()

    @property
    def matches_everything(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return False
        return all(req.matches(labels) for req in self.match_expressions)

    def __str__(self) -> str:
        """The selector in the API's query syntax (``?labelSelector=``)."""
        terms = [f"{k}={v}" for k, v in self.match_labels.items()]
        terms += [str(r) for r in self.match_expressions]
        return ",".join(terms)

    @classmethod
    def from_api(cls, value: Any, reader: Reader | None = None, path: str = "selector") -> LabelSelector:
        """Parse an API ``LabelSelector`` object; raises InvalidObject."""
        r = reader or Reader("LabelSelector")
        raw = r.mapping(value, path)
        match_labels = r.str_map(raw.get("matchLabels"), f"{path}.matchLabels")
        reqs: list[Requirement] = []
        for i, expr in enumerate(r.items(raw.get("matchExpressions"), f"{path}.matchExpressions")):
            reqs.append(_requirement(r, expr, f"{path}.matchExpressions[{i}]"))
        reqs.sort(key=lambda q: (q.key, q.operator.value, sorted(q.values)))
        return cls(match_labels, tuple(reqs))


def _requirement(r: Reader, expr: Any, path: str) -> Requirement:
    expr = r.mapping(expr, path)
    key = r.string(expr.get("key"), f"{path}.key", required=True)
    op = r.enum(expr.get("operator"), f"{path}.operator", Operator)
    values = r.items(expr.get("values"), f"{path}.values")
    for j, v in enumerate(values):
        if not isinstance(v, str):
            r.fail(f"{path}.values[{j}]", f"expected a string, got {v!r}")
    if op in (Operator.IN, Operator.NOT_IN) and not values:
        r.fail(f"{path}.values", f"must be non-empty for operator {op.value}")
    if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and values:
        r.fail(f"{path}.values", f"must be empty for operator {op.value}")
    return Requirement(key, op, frozenset(values))
