"""Everything an emulated VPP process holds, and the rules for extending it.

Owns: :class:`VppState` (the interface table, the FIB, and one state object
per API family), :class:`FamilyState` (the base of a family's state and its
notification hooks), :class:`IndexPool` (VPP's pool index allocation) and
:class:`EmulatorConfig`.

A simulated VPP restart replaces the whole :class:`VppState`: nothing
survives, exactly as nothing survives a VPP process exit.

How a family keeps state (cnat, acl, ipsec... follow the same pattern)::

    @dataclass
    class CnatState(FamilyState):
        translations: dict[int, Translation] = field(default_factory=dict)
        ids: IndexPool = field(default_factory=IndexPool)

        def on_interface_deleted(self, state, iface):   # optional hook
            ...

    st = emu.state(CnatState)      # created on first use, dropped on restart

Hooks are plain methods a family state may define; the interface table and
the FIB call them on every family state that exists, in creation order:

- ``setup(state)``: once, right after the family state is created;
- ``on_interface_added(state, iface)``;
- ``on_admin_change(state, iface, up)``: after the admin flag changed;
- ``on_address_deleted(state, iface, address)``: after an interface
  address (``IPv4Interface``/``IPv6Interface``) was removed;
- ``on_table_bound(state, iface, af, old_table_id, new_table_id)``;
- ``on_interface_deleted(state, iface)``: before the index is freed (the
  interface is admin down and has no addresses by then);
- ``on_client_disconnected(state, client_index)``: an API client went away.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    from .fib import Fib
    from .interfaces import InterfaceTable

log = logging.getLogger(__name__)

T = TypeVar("T")

NO_INDEX = 0xFFFFFFFF  # VPP's ~0


@dataclass(frozen=True)
class EmulatorConfig:
    """What the emulated VPP was started with (its startup.conf, in effect)."""

    # The node has no /dev/vhost-net: tap creation fails like VPP's does.
    no_vhost_net: bool = False
    # VPP's runtime directory; relative memif socket names live under it.
    runtime_dir: str = "/run/vpp"
    # Host interface names treated as existing for af_packet, in addition to
    # the interfaces really present in the emulator's network namespace.
    host_interfaces: frozenset[str] = frozenset()
    # Seed of the "random" values (MAC addresses, IDs) VPP would pick.
    seed: int = 0
    # Create the Linux end of taps (a real tun/tap device in the host
    # namespace), as VPP does; off by default (needs root).
    host_devices: bool = False
    # ``cpu { workers N }``: worker threads that poll the interfaces. VPP spreads queues over
    # them round robin; the emulator puts every queue on the first worker until it is placed.
    workers: int = 0


class IndexPool:
    """VPP's pool allocation: freed indices are reused, last freed first."""

    def __init__(self, reserved: int = 0):
        self._next = reserved
        self._free: list[int] = []
        self._used: set[int] = set(range(reserved))

    def get(self) -> int:
        index = self._free.pop() if self._free else self._take_next()
        self._used.add(index)
        return index

    def _take_next(self) -> int:
        index = self._next
        self._next += 1
        return index

    def put(self, index: int) -> None:
        if index not in self._used:
            raise ValueError(f"index {index} is not allocated")
        self._used.remove(index)
        self._free.append(index)

    def __contains__(self, index: object) -> bool:
        return index in self._used

    def __len__(self) -> int:
        return len(self._used)


class FamilyState:
    """Base of a family's state; every hook is optional (see module doc)."""

    def setup(self, state: "VppState") -> None:
        pass


class VppState:
    """The state of one emulated VPP process."""

    def __init__(self, config: EmulatorConfig):
        # Imported here: interfaces and fib import this module for the pool.
        from .fib import Fib
        from .interfaces import InterfaceTable

        self.config = config
        self.random = random.Random(config.seed)
        self._families: dict[type, Any] = {}
        self.fib: Fib = Fib(self)
        self.interfaces: InterfaceTable = InterfaceTable(self)

    def state(self, cls: Callable[[], T]) -> T:
        """The family state of type ``cls``, created (and set up) on first use."""
        st = self._families.get(cls)  # type: ignore[arg-type]
        if st is None:
            st = cls()
            self._families[cls] = st  # type: ignore[index]
            setup = getattr(st, "setup", None)
            if setup is not None:
                setup(self)
        return st

    def families(self) -> list[Any]:
        return list(self._families.values())

    def notify(self, hook: str, *args: Any) -> None:
        """Call ``hook(state, *args)`` on every family state that defines it."""
        for st in list(self._families.values()):
            fn = getattr(st, hook, None)
            if fn is not None:
                fn(self, *args)

    def random_mac(self) -> bytes:
        """A MAC the way VPP makes one up: 02:fe followed by four random bytes."""
        return bytes([0x02, 0xFE]) + self.random.getrandbits(32).to_bytes(4, "little")
