"""Network policy in VPP through our kpol plugin: the reconciler kinds.

Owns: ``kpol-ipset`` (one compiler ipset: kind and members), ``kpol-policy``
(one local pod's ``PodPolicy`` over set names), ``kpol-attach`` (that policy
on one pod interface), their descriptors, and the ids they choose (kpol
objects are keyed by ids the agent picks: ``IdPool``).

Why this shape: a set changing members is an *update* of one object, sent as
one members_add_del with the added members and one with the removed (never a
set rewrite), so a pod joining a namespace costs one small message and no
policy is touched. Policies name sets by key; their items are built with the
sets' ids at create time.

Ownership: every kpol object is ours (nothing else programs the plugin).
Ids map back to names through the descriptors' memory of what they
created; objects a previous agent process created read back under
``#orphan`` names, so a restarted agent replaces them once (the plugin has
no tags to carry our names).

Must not touch: the compiler's state, Kubernetes, ACLs (``acl_kind``).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vppagent.kinds import VppKind
from vppagent.reconcile import Found, Key, Resolver
from vppagent.vpp import kpol
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.kpol import Dir, Item, ItemType, Member
from vppagent.vpp.retvals import Retval

from .ir import AddrPortSet, AddrSet, DirectionPolicy, IpSet, NetSet, PodPolicy, PortRange, Rule, SetKind

log = logging.getLogger(__name__)

SET_KIND = "kpol-ipset"
POLICY_KIND = "kpol-policy"
ATTACH_KIND = "kpol-attach"
INTERFACE_KIND = "pod-interface"  # vppagent.cni.pod_interface_kind.KIND (not imported: no grpc here)
ORPHAN = "#orphan"


@dataclass
class IdPool:
    """Ids in [0, limit): lowest free first; knows the name of each id it handed out."""

    limit: int
    names: dict[int, str] = field(default_factory=dict)
    _next: int = 0

    def take(self, name: str) -> int:
        if len(self.names) >= self.limit:
            raise kpol.KpolError(f"all {self.limit} kpol ids are in use")
        while self._next in self.names:
            self._next = (self._next + 1) % self.limit
        i = self._next
        self.names[i] = name
        return i

    def release(self, i: int) -> None:
        if self.names.pop(i, None) is not None and i < self._next:
            self._next = i

    def name_of(self, i: int, orphan: str) -> str:
        name = self.names.get(i)
        if name is None:
            name = self.names[i] = f"{ORPHAN}-{orphan}-{i}"  # reserved until deleted
        return name

    def id_of(self, name: str) -> int | None:
        return next((i for i, n in self.names.items() if n == name), None)


# -- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KpolSet:
    name: str
    kind: SetKind
    members: frozenset[Member]

    @property
    def key(self) -> Key:
        return Key(SET_KIND, self.name)


def kpol_set(s: IpSet) -> KpolSet:
    """The kpol value of one compiler ipset."""
    if isinstance(s, AddrSet):
        ms = frozenset(Member(a) for a in s.members)
    elif isinstance(s, NetSet):
        ms = frozenset([Member.net(n) for n in s.include] + [Member.net(n, exclude=True) for n in s.exclude])
    elif isinstance(s, AddrPortSet):
        ms = frozenset(Member(a, proto=proto, port=port) for a, proto, port in s.members)
    else:
        raise TypeError(f"not an ipset: {s!r}")
    return KpolSet(s.name, SetKind(int(s.kind)), ms)


@dataclass(frozen=True)
class KpolPolicy:
    name: str  # the local pod's key, as a string
    policy: PodPolicy

    @property
    def key(self) -> Key:
        return Key(POLICY_KIND, self.name)

    def set_names(self) -> list[str]:
        out: list[str] = []
        for d in (self.policy.ingress, self.policy.egress):
            for r in d.rules if d else ():
                out += list(r.peers or ()) + list(r.peer_ports)
        return sorted(set(out))


def policy_items(policy: PodPolicy, set_id: Any) -> list[Item]:
    """The flat item list of a policy; ``set_id(name)`` gives each set's id."""
    items: list[Item] = []
    for d, dp in ((Dir.INGRESS, policy.ingress), (Dir.EGRESS, policy.egress)):
        for r in dp.rules if dp else ():
            items.append(Item(ItemType.RULE, d, r.peers is None))
            items += [Item(ItemType.PEER, d, set_id=set_id(n)) for n in r.peers or ()]
            items += [Item(ItemType.PORTS, d, proto=p.proto, lo=p.lo, hi=p.hi) for p in r.ports]
            items += [Item(ItemType.PEER_PORT, d, set_id=set_id(n)) for n in r.peer_ports]
    return items


def policy_of_items(ingress: bool, egress: bool, items: Iterable[Item], set_name: Any) -> PodPolicy:
    rules: tuple[list[dict], list[dict]] = ([], [])
    cur: dict | None = None
    for it in items:
        if it.type is ItemType.RULE:
            cur = {"any": it.any_peer, "peers": [], "ports": [], "pp": []}
            rules[int(it.dir)].append(cur)
        elif cur is not None:
            if it.type is ItemType.PEER:
                cur["peers"].append(set_name(it.set_id))
            elif it.type is ItemType.PORTS:
                cur["ports"].append(PortRange(it.proto, it.lo, it.hi))
            else:
                cur["pp"].append(set_name(it.set_id))

    def direction(i: int, isolated: bool) -> DirectionPolicy | None:
        if not isolated:
            return None
        return DirectionPolicy(tuple(Rule(None if r["any"] else tuple(r["peers"]), tuple(r["ports"]),
                                          tuple(r["pp"])) for r in rules[i]))

    return PodPolicy(direction(0, ingress), direction(1, egress))


@dataclass(frozen=True)
class KpolAttach:
    interface: Key  # a pod-interface key
    policy: Key

    @property
    def key(self) -> Key:
        return Key(ATTACH_KIND, self.interface.id)


def _gone(e: VppApiError) -> bool:
    return e.retval in (Retval.NO_SUCH_ENTRY, Retval.INVALID_SW_IF_INDEX)


# -- descriptors ----------------------------------------------------------------------------------


class KpolSetDescriptor(VppKind):
    kind = SET_KIND

    def __init__(self, ids: IdPool | None = None):
        self.ids = ids or IdPool(kpol.MAX_SET_ID)

    def key(self, value: KpolSet) -> str:
        return value.name

    def create(self, vpp: VppClient, value: KpolSet, resolver: Resolver) -> int:
        set_id = self.ids.take(value.name)
        try:
            kpol.ipset_add(vpp, set_id, value.kind)
        except Exception:
            self.ids.release(set_id)
            raise
        try:
            kpol.members_add(vpp, set_id, value.members)
        except Exception:
            kpol.ipset_del(vpp, set_id)  # all or nothing: no empty set left behind
            self.ids.release(set_id)
            raise
        return set_id

    def can_update(self, old: KpolSet, new: KpolSet) -> bool:
        return old.kind == new.kind

    def update(self, vpp: VppClient, old: KpolSet, handle: int, new: KpolSet, resolver: Resolver) -> int:
        added, removed = new.members - old.members, old.members - new.members
        kpol.members_add(vpp, handle, added)
        try:
            kpol.members_del(vpp, handle, removed)
        except Exception:
            kpol.members_del(vpp, handle, added)  # back to exactly ``old``
            raise
        return handle

    def delete(self, vpp: VppClient, value: KpolSet, handle: int, resolver: Resolver) -> None:
        try:
            kpol.ipset_del(vpp, handle)
        except VppApiError as e:
            if not _gone(e):
                raise
        self.ids.release(handle)

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[KpolSet]]:
        if not kpol.available(vpp):
            return []
        return [Found(KpolSet(self.ids.name_of(s.set_id, "set"), s.kind, s.members), s.set_id)
                for s in kpol.dump_ipsets(vpp)]


class KpolPolicyDescriptor(VppKind):
    kind = POLICY_KIND
    retrieve_after: tuple[str, ...] = (SET_KIND,)

    def __init__(self, ids: IdPool | None = None):
        self.ids = ids or IdPool(kpol.MAX_POLICY_ID)

    def key(self, value: KpolPolicy) -> str:
        return value.name

    def dependencies(self, value: KpolPolicy) -> Iterable[Key]:
        return [Key(SET_KIND, n) for n in value.set_names()]

    def _set(self, vpp: VppClient, policy_id: int, value: KpolPolicy, resolver: Resolver) -> None:
        items = policy_items(value.policy, lambda n: resolver.handle(Key(SET_KIND, n)))
        kpol.policy_set(vpp, policy_id, value.policy.ingress is not None, value.policy.egress is not None, items)

    def create(self, vpp: VppClient, value: KpolPolicy, resolver: Resolver) -> int:
        policy_id = self.ids.take(value.name)
        try:
            self._set(vpp, policy_id, value, resolver)
        except Exception:
            self.ids.release(policy_id)
            raise
        return policy_id

    def can_update(self, old: KpolPolicy, new: KpolPolicy) -> bool:
        return True

    def update(self, vpp: VppClient, old: KpolPolicy, handle: int, new: KpolPolicy, resolver: Resolver) -> int:
        self._set(vpp, handle, new, resolver)  # replaced whole, in place: attachments keep it
        return handle

    def delete(self, vpp: VppClient, value: KpolPolicy, handle: int, resolver: Resolver) -> None:
        try:
            kpol.policy_del(vpp, handle)
        except VppApiError as e:
            if not _gone(e):
                raise
        self.ids.release(handle)

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[KpolPolicy]]:
        if not kpol.available(vpp):
            return []

        def set_name(set_id: int) -> str:
            k = resolver.key_of(SET_KIND, set_id)
            return str(k.id) if k is not None else f"{ORPHAN}-set-{set_id}"

        return [Found(KpolPolicy(self.ids.name_of(p.policy_id, "policy"),
                                 policy_of_items(p.ingress_isolated, p.egress_isolated, p.items, set_name)),
                      p.policy_id)
                for p in kpol.dump_policies(vpp)]


class KpolAttachDescriptor(VppKind):
    kind = ATTACH_KIND
    retrieve_after: tuple[str, ...] = (POLICY_KIND, INTERFACE_KIND)

    def key(self, value: KpolAttach) -> Any:
        return value.interface.id

    def dependencies(self, value: KpolAttach) -> Iterable[Key]:
        return [value.interface, value.policy]

    def create(self, vpp: VppClient, value: KpolAttach, resolver: Resolver) -> int:
        sw_if_index = resolver.handle(value.interface)
        kpol.attach(vpp, sw_if_index, resolver.handle(value.policy))
        return sw_if_index

    def can_update(self, old: KpolAttach, new: KpolAttach) -> bool:
        return old.interface == new.interface

    def update(self, vpp: VppClient, old: KpolAttach, handle: int, new: KpolAttach, resolver: Resolver) -> int:
        kpol.attach(vpp, handle, resolver.handle(new.policy))  # replaces the attached policy at once
        return handle

    def delete(self, vpp: VppClient, value: KpolAttach, handle: int, resolver: Resolver) -> None:
        kpol.detach(vpp, handle, missing_ok=True)

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[KpolAttach]]:
        if not kpol.available(vpp):
            return []
        out = []
        for sw, policy_id in sorted(kpol.attachments(vpp).items()):
            iface = resolver.key_of(INTERFACE_KIND, sw) or Key(INTERFACE_KIND, f"{ORPHAN}-sw-{sw}")
            pol = resolver.key_of(POLICY_KIND, policy_id) or Key(POLICY_KIND, f"{ORPHAN}-policy-{policy_id}")
            out.append(Found(KpolAttach(iface, pol), sw))
        return out


__all__ = ["ATTACH_KIND", "IdPool", "KpolAttach", "KpolAttachDescriptor", "KpolPolicy", "KpolPolicyDescriptor",
           "KpolSet", "KpolSetDescriptor", "POLICY_KIND", "SET_KIND", "kpol_set", "policy_items",
           "policy_of_items"]
