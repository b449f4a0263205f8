"""A reusable descriptor for loopback interfaces the agent creates, identified by tag.

Owns: ``Loopback`` (a named loopback, admin up or down) and
``LoopbackDescriptor``. Other kinds reference a loopback by its key; its
handle is its sw_if_index.

Ownership scheme: every interface the agent creates carries the tag
``vppagent:<kind>:<name>`` (here ``vppagent:lo:<name>``; VPP tags hold 63
bytes). Creation and tagging are two calls, so a crash between them would
leave an untagged loopback; to recognise such leftovers the agent creates
its loopbacks with instance numbers from a reserved range
(``loop<base>``..``loop<base+count-1>``), and an untagged loopback in that
range is treated as its own stale object and deleted at resync. Interfaces
with other tags or outside the range are never touched.

A loopback may carry addresses and sit in a table (the pods' gateway
loopback: its address is what pod interfaces borrow as unnumbered).

Must not touch: routes or anything else on the interface.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vppagent.vpp import interfaces
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval
from vppagent.reconcile import Found, Key, Resolver

from .base import VppKind

TAG_PREFIX = "vppagent:lo:"
KIND = "loopback"
_LOOP_NAME = re.compile(r"^loop(\d+)$")


@dataclass(frozen=True)
class Loopback:
    name: str
    admin_up: bool = True
    addresses: tuple[str, ...] = ()  # ip_interface strings, kept sorted
    table_id: int = 0

    def __post_init__(self) -> None:
        canonical = tuple(sorted(str(ipaddress.ip_interface(a)) for a in self.addresses))
        if canonical != self.addresses:
            object.__setattr__(self, "addresses", canonical)

    @property
    def key(self) -> Key:
        return Key(KIND, self.name)


class LoopbackDescriptor(VppKind):
    """Loopbacks by tag; not batchable (create, tag and admin-up depend on each other)."""

    kind = KIND

    def __init__(self, *, instance_base: int = 3000, instance_count: int = 1000):
        self.instance_base = instance_base
        self.instance_count = instance_count
        self._in_use: dict[int, int | None] = {}  # instance -> sw_if_index (None: not ours)

    def key(self, value: Loopback) -> str:
        return value.name

    def create(self, vpp: VppClient, value: Loopback, resolver: Resolver) -> int:
        sw_if_index = self._create_in_range(vpp)
        try:
            interfaces.set_tag(vpp, sw_if_index, TAG_PREFIX + value.name)
            self._set_l3(vpp, sw_if_index, Loopback(value.name), value)
            if value.admin_up:
                interfaces.set_admin_up(vpp, sw_if_index)
        except VppApiError:
            # Do not leave an untagged (or half-set) loopback behind.
            interfaces.delete_loopback(vpp, sw_if_index)
            self._forget(sw_if_index)
            raise
        return sw_if_index

    def _create_in_range(self, vpp: VppClient) -> int:
        for offset in range(self.instance_count):
            instance = self.instance_base + offset
            if instance in self._in_use:
                continue
            try:
                sw_if_index = interfaces.create_loopback(vpp, instance=instance)
            except VppApiError as e:
                if e.retval == Retval.INVALID_REGISTRATION:  # someone else's loop<instance>
                    self._in_use[instance] = None
                    continue
                raise
            self._in_use[instance] = sw_if_index
            return sw_if_index
        raise VppApiError("create_loopback_instance", int(Retval.INVALID_REGISTRATION),
                          {"instance": f"{self.instance_base}..+{self.instance_count} all in use"})

    def can_update(self, old: Loopback, new: Loopback) -> bool:
        return True

    def update(self, vpp: VppClient, old: Loopback, handle: Any, new: Loopback, resolver: Resolver) -> int:
        self._set_l3(vpp, handle, old, new)
        interfaces.set_admin_up(vpp, handle, new.admin_up)
        return handle

    @staticmethod
    def _set_l3(vpp: VppClient, sw_if_index: int, old: Loopback, new: Loopback) -> None:
        if old.table_id != new.table_id:
            # VPP refuses a table change while the interface has addresses.
            for a in old.addresses:
                interfaces.del_address(vpp, sw_if_index, a)
            for v6 in (False, True):
                interfaces.set_table(vpp, sw_if_index, new.table_id, ipv6=v6)
            old = Loopback(old.name, old.admin_up, (), new.table_id)
        for a in sorted(set(old.addresses) - set(new.addresses)):
            interfaces.del_address(vpp, sw_if_index, a)
        for a in sorted(set(new.addresses) - set(old.addresses)):
            interfaces.add_address(vpp, sw_if_index, a)

    def delete(self, vpp: VppClient, value: Loopback, handle: Any, resolver: Resolver) -> None:
        try:
            interfaces.delete_loopback(vpp, handle)
        except VppApiError as e:
            if e.retval != Retval.INVALID_SW_IF_INDEX:  # already gone
                raise
        self._forget(handle)

    def _forget(self, sw_if_index: int) -> None:
        for instance, held in list(self._in_use.items()):
            if held == sw_if_index:
                del self._in_use[instance]

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[Loopback]]:
        out: list[Found[Loopback]] = []
        seen: set[str] = set()
        self._in_use = {}
        for i in interfaces.dump(vpp):
            m = _LOOP_NAME.match(i.name)
            instance = int(m.group(1)) if m else -1
            in_range = 0 <= instance - self.instance_base < self.instance_count
            if in_range:
                self._in_use[instance] = i.sw_if_index
            if i.tag.startswith(TAG_PREFIX):
                name = i.tag[len(TAG_PREFIX):]
                if name in seen or not name:
                    name = f"{name}#dup{i.sw_if_index}"  # stale: never a desired name
                seen.add(name)
                addrs = tuple(str(a) for a in interfaces.addresses(vpp, i.sw_if_index))
                table = interfaces.get_table(vpp, i.sw_if_index)
                out.append(Found(Loopback(name, i.admin_up, addrs, table), i.sw_if_index))
            elif in_range and not i.tag:
                # A crash between create and tag: ours, and stale by construction.
                out.append(Found(Loopback(f"#untagged{i.sw_if_index}", i.admin_up), i.sw_if_index))
        return out

