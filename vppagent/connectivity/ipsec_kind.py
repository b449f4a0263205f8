"""The ``node-ipsec`` kind: a peer tunnel's ESP SAs and their tunnel protection, as one object.

Owns ``EspSa`` (one SA as a value: SPI, direction, AES-GCM-256 key and salt),
``IpsecProtection`` (the SAs protecting one peer's ``ipsecN`` tunnel: one
outbound, up to four inbound, newest first) and ``IpsecDescriptor``.

Why one object: a rekey must be make-before-break. Updating this object
adds the new SAs, swaps the protection to the new set in one
``ipsec_tunnel_protect_update`` (VPP switches without a gap), and only then
deletes the SAs no longer used. Were SAs objects of their own, the
reconciler would remove the protection referencing an SA before deleting
the SA, and traffic would flow unprotected (or not at all) in between.

SAs are tunnel mode (the ipsec interface has no encapsulation of its own),
AES-GCM-256, anti-replay on, extended sequence numbers, outer addresses
local -> peer (outbound) and peer -> local (inbound).

Ownership scheme: SA ids in ``[sa_id_base, sa_id_base + sa_id_count)`` are
ours; a protection is ours when its interface is a ``node-tunnel``. An SA
in our range that no protection of ours uses (a crash between adding it
and protecting) is deleted the next time this kind writes to VPP.

KEYS ARE SECRETS: key and salt are ``repr=False``; errors name SA ids and
SPIs only.

Must not touch: the tunnel interface itself (``node-tunnel``), routes.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vppagent.kinds import VppKind
from vppagent.reconcile import Found, Key, Resolver
from vppagent.vpp import ipsec
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval
from vppagent.iptypes import IpAddress

from .tunnel_kind import KIND as TUNNEL_KIND

KIND = "node-ipsec"


@dataclass(frozen=True)
class EspSa:
    spi: int
    inbound: bool
    key: bytes = field(repr=False)
    salt: int = field(repr=False)


@dataclass(frozen=True)
class IpsecProtection:
    tunnel: Key  # the node-tunnel (ipsec flavour) it protects
    local: IpAddress
    peer: IpAddress
    outbound: EspSa
    inbound: tuple[EspSa, ...]  # newest first; at most ipsec.MAX_SA_IN

    def __post_init__(self) -> None:
        if not 1 <= len(self.inbound) <= ipsec.MAX_SA_IN:
            raise ValueError(f"{self.tunnel}: {len(self.inbound)} inbound SAs (1..{ipsec.MAX_SA_IN})")

    @property
    def sas(self) -> tuple[EspSa, ...]:
        return (self.outbound,) + self.inbound


def _identity(sa: EspSa) -> tuple[int, bool]:
    return (sa.spi, sa.inbound)


class IpsecDescriptor(VppKind):
    """Protections with their SAs; handle: {(spi, inbound): sa_id}."""

    kind = KIND
    retrieve_after = (TUNNEL_KIND,)

    def __init__(self, *, sa_id_base: int = 0x7A000000, sa_id_count: int = 1 << 20):
        self.sa_id_base = sa_id_base
        self.sa_id_count = sa_id_count
        self._used: set[int] = set()  # ids of ours VPP holds
        self._orphans: set[int] = set()  # ids of ours no protection uses
        self._next = 0

    def key(self, value: IpsecProtection) -> Key:
        return value.tunnel

    def dependencies(self, value: IpsecProtection) -> Iterable[Key]:
        return [value.tunnel]

    def _ours(self, sa_id: int) -> bool:
        return 0 <= sa_id - self.sa_id_base < self.sa_id_count

    def _allocate(self) -> int:
        for _ in range(self.sa_id_count):
            sa_id = self.sa_id_base + self._next
            self._next = (self._next + 1) % self.sa_id_count
            if sa_id not in self._used:
                self._used.add(sa_id)
                return sa_id
        raise VppApiError("ipsec_sad_entry_add_v2", int(Retval.ENTRY_ALREADY_EXISTS),
                          {"sa_id": f"{self.sa_id_base}..+{self.sa_id_count} all in use"})

    def _spec(self, sa_id: int, sa: EspSa, value: IpsecProtection) -> ipsec.SaSpec:
        outer = (ipsec.SaTunnel(value.peer, value.local) if sa.inbound
                 else ipsec.SaTunnel(value.local, value.peer))
        # ESN: a 32-bit sequence number would wrap (and anti-replay then drop everything) after
        # 2^32 packets, well within the default bytes lifetime at small packet sizes.
        return ipsec.SaSpec(sa_id, sa.spi, sa.key, sa.salt, inbound=sa.inbound, tunnel=outer, esn=True)

    def _add(self, vpp: VppClient, sas: Iterable[EspSa], value: IpsecProtection,
             handle: dict[tuple[int, bool], int]) -> None:
        for sa in sas:
            sa_id = self._allocate()
            try:
                ipsec.add_sa(vpp, self._spec(sa_id, sa, value))
            except Exception:
                self._used.discard(sa_id)
                raise
            handle[_identity(sa)] = sa_id

    def _drop(self, vpp: VppClient, sa_ids: Iterable[int]) -> None:
        for sa_id in sa_ids:
            try:
                ipsec.delete_sa(vpp, sa_id, check_unused=False)
            except VppApiError as e:
                if e.retval != Retval.NO_SUCH_ENTRY:
                    raise
            self._used.discard(sa_id)
            self._orphans.discard(sa_id)

    def _protect(self, vpp: VppClient, value: IpsecProtection, handle: dict[tuple[int, bool], int],
                 resolver: Resolver) -> None:
        ipsec.protect(vpp, resolver.handle(value.tunnel), handle[_identity(value.outbound)],
                      [handle[_identity(s)] for s in value.inbound])

    def create(self, vpp: VppClient, value: IpsecProtection, resolver: Resolver) -> dict:
        self._drop(vpp, sorted(self._orphans))
        handle: dict[tuple[int, bool], int] = {}
        try:
            self._add(vpp, value.sas, value, handle)
            self._protect(vpp, value, handle, resolver)
        except Exception:
            self._drop(vpp, handle.values())  # nothing half-made stays
            raise
        return handle

    def can_update(self, old: IpsecProtection, new: IpsecProtection) -> bool:
        return old.tunnel == new.tunnel and (old.local, old.peer) == (new.local, new.peer)

    def update(self, vpp: VppClient, old: IpsecProtection, handle: Any, new: IpsecProtection,
               resolver: Resolver) -> dict:
        """Make before break: new SAs, then the protection swap, then the old SAs go."""
        self._drop(vpp, sorted(self._orphans))
        held: dict[tuple[int, bool], int] = dict(handle)
        old_by_id = {_identity(s): s for s in old.sas}
        wanted = {_identity(s): s for s in new.sas}
        # An SA whose SPI stays but whose key changed is another SA: replace it too.
        fresh = [s for i, s in wanted.items() if i not in held or old_by_id.get(i) != s]
        stale_ids = [held.pop(i) for i in list(held) if i not in wanted or old_by_id.get(i) != wanted[i]]
        added: dict[tuple[int, bool], int] = {}
        try:
            self._add(vpp, fresh, new, added)
            merged = {**held, **added}
            self._protect(vpp, new, merged, resolver)
        except Exception:
            self._drop(vpp, added.values())
            raise
        self._drop(vpp, stale_ids)
        return merged

    def delete(self, vpp: VppClient, value: IpsecProtection, handle: Any, resolver: Resolver) -> None:
        try:
            ipsec.unprotect(vpp, resolver.handle(value.tunnel))
        except KeyError:
            pass  # the tunnel is already gone, and its protection with it
        except VppApiError as e:
            if e.retval not in (Retval.NO_SUCH_ENTRY, Retval.INVALID_SW_IF_INDEX):
                raise
        self._drop(vpp, sorted((handle or {}).values()))

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[IpsecProtection]]:
        sas = {s.sa_id: s for s in ipsec.dump_sas(vpp) if self._ours(s.sa_id)}
        self._used = set(sas)
        referenced: set[int] = set()
        out: list[Found[IpsecProtection]] = []
        for p in ipsec.dump_protections(vpp):
            tunnel = resolver.key_of(TUNNEL_KIND, p.sw_if_index)
            if tunnel is None:
                continue  # not a tunnel of ours
            ids = (p.sa_out,) + p.sa_in
            referenced.update(ids)
            if not all(i in sas for i in ids) or sas[p.sa_out].tunnel is None:
                # Protected with SAs we did not make: a value that is never desired, so it is replaced.
                continue
            def esp(sa: ipsec.Sa) -> EspSa:
                return EspSa(sa.spi, sa.inbound, sa.crypto_key, sa.salt)
            out_sa = sas[p.sa_out]
            value = IpsecProtection(tunnel, out_sa.tunnel.src, out_sa.tunnel.dst, esp(out_sa),
                                    tuple(esp(sas[i]) for i in p.sa_in))
            handle = {_identity(esp(sas[i])): i for i in ids}
            out.append(Found(value, handle))
        self._orphans = set(sas) - referenced
        return out

