"""Handler families of the emulator, found by looking at this package.

Every module here that defines a module-level ``HANDLERS``
(:class:`~testbed.emulator.registry.HandlerTable`) is a family; the server
imports them all at start-up (``discover``) and routes each request to the
handler registered for its message name. Adding a family is adding a module:

    # handlers/cnat.py
    HANDLERS = HandlerTable("cnat")

    @HANDLERS.handler("cnat_translation_update")
    def translation_update(emu, mp):
        st = emu.state(CnatState)
        ...
        return {"id": index}

A module may also define ``DECODE_ERRORS = {message: retval}``: the retval to
answer when vpp_papi cannot decode a request of that message (for example
an IPv4 prefix length above 32, which VPP itself rejects with that retval).
Without an entry such a request is answered with INVALID_ARGUMENT.
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import dataclass, field
from types import ModuleType
from typing import Iterable

from ..registry import Handler, HandlerTable

log = logging.getLogger(__name__)


@dataclass
class Dispatch:
    """Message name -> handler, merged from every family."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    family_of: dict[str, str] = field(default_factory=dict)
    decode_errors: dict[str, int] = field(default_factory=dict)
    families: list[str] = field(default_factory=list)

    def add(self, table: HandlerTable, decode_errors: dict[str, int] | None = None) -> None:
        for name, fn in table.handlers.items():
            if name in self.handlers:
                raise ValueError(
                    f"{name} is handled by both {self.family_of[name]} and {table.family}"
                )
            self.handlers[name] = fn
            self.family_of[name] = table.family
        self.decode_errors.update(decode_errors or {})
        self.families.append(table.family)


def _modules(package: str) -> Iterable[ModuleType]:
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{package}.{info.name}")


def discover(package: str = __name__) -> Dispatch:
    """Import every family module of the package and merge their handlers."""
    dispatch = Dispatch()
    for module in _modules(package):
        table = getattr(module, "HANDLERS", None)
        if isinstance(table, HandlerTable):
            dispatch.add(table, getattr(module, "DECODE_ERRORS", None))
        else:
            log.debug("module has no HANDLERS table", extra={"module": module.__name__})
    return dispatch
