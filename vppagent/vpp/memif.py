"""memif: shared-memory packet interfaces, and the socket files they meet on.

Owns socket filename registration (an id per socket path) and memif
create/delete/dump. For pods, VPP is the master (server) and the socket file
lives in a directory the pod mounts.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from vppagent.iptypes import U32_NONE

from .client import VppClient

MESSAGES = (
    "memif_socket_filename_add_del_v2",
    "memif_socket_filename_dump",
    "memif_create_v2",
    "memif_delete",
    "memif_dump",
)

AUTO_SOCKET_ID = U32_NONE


class Role(IntEnum):
    MASTER = 0
    SLAVE = 1


class Mode(IntEnum):
    ETHERNET = 0
    IP = 1
    PUNT_INJECT = 2


@dataclass(frozen=True)
class MemifSocket:
    socket_id: int
    filename: str


@dataclass(frozen=True)
class MemifSpec:
    socket_id: int
    id: int = 0
    role: Role = Role.MASTER
    mode: Mode = Mode.IP
    rx_queues: int = 1
    tx_queues: int = 1
    ring_size: int = 1024
    buffer_size: int = 2048
    secret: str = ""


@dataclass(frozen=True)
class Memif:
    sw_if_index: int
    id: int
    socket_id: int
    role: Role
    mode: Mode
    name: str
    ring_size: int
    buffer_size: int


def add_socket(vpp: VppClient, filename: str, socket_id: int = AUTO_SOCKET_ID) -> int:
    """Register a socket file; returns its id (VPP picks one when asked to)."""
    return vpp.call("memif_socket_filename_add_del_v2", is_add=True, socket_id=socket_id,
                    socket_filename=filename).socket_id


def del_socket(vpp: VppClient, socket_id: int) -> None:
    vpp.call("memif_socket_filename_add_del_v2", is_add=False, socket_id=socket_id, socket_filename="")


def sockets(vpp: VppClient) -> list[MemifSocket]:
    return [MemifSocket(d.socket_id, d.socket_filename) for d in vpp.dump("memif_socket_filename_dump")]


def create(vpp: VppClient, spec: MemifSpec) -> int:
    if len(spec.secret) > 23:
        raise ValueError("memif secret longer than 23 characters")
    return vpp.call(
        "memif_create_v2",
        role=int(spec.role),
        mode=int(spec.mode),
        rx_queues=spec.rx_queues,
        tx_queues=spec.tx_queues,
        id=spec.id,
        socket_id=spec.socket_id,
        ring_size=spec.ring_size,
        buffer_size=spec.buffer_size,
        secret=spec.secret,
    ).sw_if_index


def delete(vpp: VppClient, sw_if_index: int) -> None:
    vpp.call("memif_delete", sw_if_index=sw_if_index)


def dump(vpp: VppClient) -> list[Memif]:
    return [
        Memif(d.sw_if_index, d.id, d.socket_id, Role(int(d.role)), Mode(int(d.mode)), d.if_name,
              d.ring_size, d.buffer_size)
        for d in vpp.dump("memif_dump")
    ]
