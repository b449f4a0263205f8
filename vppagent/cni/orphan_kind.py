"""The ``pod-orphan`` kind: interfaces the agent made in VPP but never tagged, found by name and deleted.

Why: ``af_packet_create_v3`` and ``memif_create_v2`` carry no tag, so a pod
interface or a spare is created in one call and tagged in the next (a tun is
tagged by ``tap_create_v3`` itself). An agent killed between the two calls
leaves an interface that no tag claims; read-back by tag would never own it
and it would stay in VPP through every restart. These are ours by name
instead, since only this agent names things so:

- an untagged af_packet interface on a host veth named ``vpa`` + 12 hex
  digits (a pod's, ``pod_interface_kind.HOST_IFNAME``) or ``vpw`` + 12 hex
  digits (a spare's, ``pool.HOST_IFNAME``);
- an untagged memif interface on a socket in the abstract namespace
  ``vppagent/`` (``pod_interface_kind.MEMIF_SOCKET_PREFIX``), and such a socket
  no interface uses (a crash between registering it and creating the memif).

Nothing of this kind is ever desired: what ``retrieve`` finds is deleted by
the reconciler's usual rule (stale objects go once every source has listed,
deletes before creates, so a pod's interface re-created on the same veth
finds the name free). The reconciler thread is VPP's only writer, so a
read-back never sees the agent's own create between its two calls.

Must not touch: untagged interfaces on other names (the operator's, VPP's own).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vppagent.cni import pool
from vppagent.cni.pod_interface_kind import HOST_IFNAME, MEMIF_SOCKET_PREFIX
from vppagent.kinds import VppKind
from vppagent.reconcile import Found, Key, Resolver
from vppagent.vpp import af_packet, interfaces, memif
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval

KIND = "pod-orphan"

AF_PACKET = "af_packet"
MEMIF = "memif"
MEMIF_SOCKET = "memif-socket"


@dataclass(frozen=True)
class Orphan:
    what: str          # AF_PACKET, MEMIF or MEMIF_SOCKET
    name: str          # the host veth, or the socket's file name
    socket_id: int = 0  # memif and memif-socket: the socket to unregister

    @property
    def key(self) -> Key:
        return Key(KIND, (self.what, self.name))


def _ours(host_ifname: str) -> bool:
    return bool(HOST_IFNAME.fullmatch(host_ifname) or pool.HOST_IFNAME.fullmatch(host_ifname))


class OrphanDescriptor(VppKind):
    """Never desired: ``create`` cannot happen, ``delete`` removes what a crash left."""

    kind = KIND

    def key(self, value: Orphan) -> tuple[str, str]:
        return (value.what, value.name)

    def create(self, vpp: VppClient, value: Orphan, resolver: Resolver) -> Any:
        raise NotImplementedError("orphans are only ever deleted")

    def update(self, vpp: VppClient, old: Orphan, handle: Any, new: Orphan, resolver: Resolver) -> Any:
        raise NotImplementedError("orphans are only ever deleted")

    def delete(self, vpp: VppClient, value: Orphan, handle: Any, resolver: Resolver) -> None:
        try:
            if value.what == AF_PACKET:
                af_packet.delete(vpp, value.name)
                return
            if value.what == MEMIF:
                memif.delete(vpp, handle)
            memif.del_socket(vpp, value.socket_id)
        except VppApiError as e:
            if e.retval not in (Retval.INVALID_SW_IF_INDEX, Retval.NO_SUCH_ENTRY, Retval.INVALID_INTERFACE):
                raise

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[Orphan]]:
        untagged = {i.sw_if_index for i in interfaces.dump(vpp) if not i.tag}
        out = [Found(Orphan(AF_PACKET, a.host_if_name), a.sw_if_index) for a in af_packet.dump(vpp)
               if a.sw_if_index in untagged and _ours(a.host_if_name)]
        files = {s.socket_id: s.filename for s in memif.sockets(vpp) if s.filename.startswith(MEMIF_SOCKET_PREFIX)}
        if not files:
            return out
        memifs = memif.dump(vpp)
        out += [Found(Orphan(MEMIF, files[m.socket_id], m.socket_id), m.sw_if_index) for m in memifs
                if m.sw_if_index in untagged and m.socket_id in files]
        used = {m.socket_id for m in memifs}
        out += [Found(Orphan(MEMIF_SOCKET, name, socket_id), socket_id) for socket_id, name in files.items()
                if socket_id not in used]
        return out


__all__ = ["KIND", "Orphan", "OrphanDescriptor"]
