"""The base of every VPP object kind: the reconciler's defaults plus VPP's verdict on retries.

Owns ``VppKind``. Why it is not in ``reconcile``: which errors mean "this value
will never be accepted" is VPP's knowledge (its retvals), and the engine knows
no VPP (``reconcile.descriptor.DescriptorBase`` leaves ``is_retriable`` open).
"""
from __future__ import annotations

from typing import TypeVar

from vppagent.reconcile.descriptor import DescriptorBase

from .retriable import default_is_retriable

V = TypeVar("V")


class VppKind(DescriptorBase[V]):
    def is_retriable(self, error: Exception) -> bool:
        return default_is_retriable(error)
