"""A test double of VPP: VPP's binary API over VPP's unix-socket protocol.

The unchanged ``vpp_papi`` client (and the agent's own client) talk to it as
to VPP 26.06 with every plugin of the definition directory loaded. It keeps
state the way VPP does (interfaces, FIB tables and entries, neighbours,
af_packet/tap/memif devices) and rejects what VPP rejects with VPP's retvals;
no packet ever flows through it. Where it and a real VPP disagree, VPP is
right and the emulator is to be fixed.

Modules:

- ``server``: :class:`Emulator` (start/stop/restart, state access) and the
  socket loop;
- ``protocol``: request -> handler -> reply rules (contexts, dumps, streams,
  client_index routing, UNIMPLEMENTED);
- ``apidefs``: the definitions and the message-ID table;
- ``state``: :class:`VppState`, :class:`FamilyState` (how a family keeps
  state and hooks into interface events), :class:`IndexPool`;
- ``interfaces``: the interface table; ``l3``: addresses, tables,
  unnumbered, IPv6 link; ``fib``: tables, entries, sources, lookups;
- ``handlers``: one module per API family, discovered automatically
  (see :mod:`testbed.emulator.handlers`); ``registry``: the handler
  contract (:class:`HandlerTable`, :class:`VppRetval`);
- ``cli``: the ``vppagent-emulator`` command.
"""
from __future__ import annotations

from .fib import Fib, FibEntry, FibPath, FibSource, FibTable, Sources
from .interfaces import HwClass, Interface, InterfaceTable
from .registry import HandlerTable, VppRetval
from .server import Emulator, EmulatorError
from .state import EmulatorConfig, FamilyState, IndexPool, VppState

__all__ = [
    "Emulator", "EmulatorError", "EmulatorConfig", "VppState", "FamilyState", "IndexPool",
    "Interface", "InterfaceTable", "HwClass", "Fib", "FibTable", "FibEntry", "FibPath",
    "FibSource", "Sources", "HandlerTable", "VppRetval",
]
