"""memif.api: socket filenames and memif interfaces.

Modelled on plugins/memif/memif.c and memif_api.c:

- socket id 0 is preset to <runtime dir>/memif.sock and cannot be deleted;
  relative names live under the runtime directory, "abstract:"/"unix:"/
  "tcp:" names and absolute paths are kept as given;
- add_del_v2: socket id 0: INVALID_ARGUMENT; id ~0 on add picks an unused
  id (answered in the reply); re-adding the same id with the same file is
  accepted, with another file ENTRY_ALREADY_EXISTS; an empty name or
  deleting an unknown id: INVALID_ARGUMENT; deleting one in use:
  UNEXPECTED_INTF_STATE;
- create: unknown socket id: INVALID_ARGUMENT; a ring size that is not a
  power of two: INVALID_ARGUMENT (0 means 1024); a socket used by masters
  cannot take slaves and vice versa, and an id is unique per socket: both
  SUBIF_ALREADY_EXISTS; a mode other than ethernet/IP: SYSCALL_ERROR_2.
  Failures answer sw_if_index 0, as VPP's zeroed arguments do;
- interfaces are named memif<socket id>/<id>; their link stays down (no
  peer ever connects to the emulator), and the dump reports ring size 1 and
  buffer size 0 as VPP does before a connection negotiates them. No socket
  file is created;
- deleting anything but a memif: INVALID_SW_IF_INDEX.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from vppagent.vpp.retvals import Retval

from ..interfaces import HwClass, Interface
from ..registry import HandlerTable, VppRetval
from ..state import FamilyState, IndexPool, VppState
from ._common import NO_INDEX, ZERO_MAC, mac_bytes

HANDLERS = HandlerTable("memif")

DEFAULT_SOCKET_FILENAME = "memif.sock"
DEFAULT_RING_SIZE = 1024
DEFAULT_BUFFER_SIZE = 2048
ROLE_MASTER = 0
ROLE_SLAVE = 1
MODE_ETHERNET = 0
MODE_IP = 1
_PREFIXES = ("unix:", "tcp:", "abstract:")


@dataclass
class SocketFile:
    socket_id: int
    filename: str
    is_listener: bool = False
    ids: dict[int, int] = field(default_factory=dict)  # memif id -> sw_if_index

    @property
    def ref_cnt(self) -> int:
        return len(self.ids)


@dataclass
class MemifIf:
    sw_if_index: int
    socket_id: int
    id: int
    dev_instance: int
    role: int
    mode: int
    zero_copy: bool
    ring_size: int
    buffer_size: int
    secret: str


@dataclass
class MemifState(FamilyState):
    sockets: dict[int, SocketFile] = field(default_factory=dict)
    memifs: dict[int, MemifIf] = field(default_factory=dict)  # by sw_if_index
    instances: IndexPool = field(default_factory=IndexPool)
    runtime_dir: str = "/run/vpp"

    def setup(self, state: VppState) -> None:
        self.runtime_dir = state.config.runtime_dir
        self.sockets[0] = SocketFile(0, self.full_name(DEFAULT_SOCKET_FILENAME))

    def full_name(self, name: str) -> str:
        if name.startswith(_PREFIXES) or name.startswith("/"):
            return name
        return posixpath.join(self.runtime_dir, name)

    def on_interface_deleted(self, state: VppState, iface: Interface) -> None:
        mif = self.memifs.pop(iface.sw_if_index, None)
        if mif is None:
            return
        sock = self.sockets.get(mif.socket_id)
        if sock is not None:
            sock.ids.pop(mif.id, None)
        self.instances.put(mif.dev_instance)


def _unused_socket_id(emu, st: MemifState) -> int:
    while True:
        candidate = emu.random.getrandbits(32)
        if candidate not in (0, NO_INDEX) and candidate not in st.sockets:
            return candidate


def _socket_add_del(emu, is_add: bool, socket_id: int, filename: str) -> None:
    st = emu.state(MemifState)
    if socket_id == 0 and not is_add:
        raise VppRetval(Retval.INVALID_ARGUMENT, "socket id 0 cannot be deleted")
    if socket_id == NO_INDEX:
        raise VppRetval(Retval.INVALID_ARGUMENT, "socket id not specified")
    if not is_add:
        sock = st.sockets.get(socket_id)
        if sock is None:
            raise VppRetval(Retval.INVALID_ARGUMENT, f"no socket id {socket_id}")
        if sock.ref_cnt:
            raise VppRetval(Retval.UNEXPECTED_INTF_STATE, f"socket {sock.filename} is in use")
        del st.sockets[socket_id]
        return
    if not filename:
        raise VppRetval(Retval.INVALID_ARGUMENT, "socket filename not specified")
    name = st.full_name(filename)
    sock = st.sockets.get(socket_id)
    if sock is not None:
        if sock.filename == name:
            return  # VPP silently accepts an identical add
        raise VppRetval(Retval.ENTRY_ALREADY_EXISTS, f"socket id {socket_id} exists")
    st.sockets[socket_id] = SocketFile(socket_id, name)


@HANDLERS.handler("memif_socket_filename_add_del")
def memif_socket_filename_add_del(emu, mp):
    if mp.socket_id in (0, NO_INDEX):
        raise VppRetval(Retval.INVALID_ARGUMENT, "socket id 0 and ~0 are reserved")
    _socket_add_del(emu, bool(mp.is_add), mp.socket_id, mp.socket_filename)
    return {}


@HANDLERS.handler("memif_socket_filename_add_del_v2")
def memif_socket_filename_add_del_v2(emu, mp):
    socket_id = mp.socket_id
    if socket_id == 0:
        return {"retval": int(Retval.INVALID_ARGUMENT), "socket_id": 0}
    if mp.is_add and socket_id == NO_INDEX:
        socket_id = _unused_socket_id(emu, emu.state(MemifState))
    try:
        _socket_add_del(emu, bool(mp.is_add), socket_id, mp.socket_filename)
    except VppRetval as e:
        return {"retval": e.retval, "socket_id": socket_id}
    return {"socket_id": socket_id}


@HANDLERS.handler("memif_socket_filename_dump")
def memif_socket_filename_dump(emu, mp):
    socks = sorted(emu.state(MemifState).sockets.values(), key=lambda s: s.socket_id)
    return [{"socket_id": s.socket_id, "socket_filename": s.filename} for s in socks]


def _create(emu, mp, use_dma: bool) -> dict:
    st = emu.state(MemifState)
    ring = mp.ring_size or DEFAULT_RING_SIZE
    if ring & (ring - 1):
        raise VppRetval(Retval.INVALID_ARGUMENT, "ring size must be a power of two")
    sock = st.sockets.get(mp.socket_id)
    if sock is None:
        raise VppRetval(Retval.INVALID_ARGUMENT, f"unknown socket id {mp.socket_id}")
    is_master = int(mp.role) == ROLE_MASTER
    if sock.ref_cnt:
        if sock.is_listener != is_master:
            raise VppRetval(Retval.SUBIF_ALREADY_EXISTS,
                            "socket file cannot be used by both master and slave")
        if mp.id in sock.ids:
            raise VppRetval(Retval.SUBIF_ALREADY_EXISTS, "interface already exists")
    mode = int(mp.mode)
    if mode not in (MODE_ETHERNET, MODE_IP):
        raise VppRetval(Retval.SYSCALL_ERROR_2, "unsupported interface mode")
    if not sock.ref_cnt:
        sock.is_listener = is_master
    instance = st.instances.get()
    name = f"memif{mp.socket_id}/{mp.id}"
    # No peer ever connects: the link stays down whatever the admin state.
    common = {"dev_instance": instance, "owner": "memif", "link_follows_admin": False}
    if mode == MODE_IP:
        iface = emu.interfaces.add(name, "memif", hw_class=HwClass.IP, **common)
    else:
        mac = mac_bytes(mp.hw_addr)
        iface = emu.interfaces.add(name, "memif", mac=mac if mac != ZERO_MAC else None, **common)
    sock.ids[mp.id] = iface.sw_if_index
    st.memifs[iface.sw_if_index] = MemifIf(
        sw_if_index=iface.sw_if_index, socket_id=mp.socket_id, id=mp.id, dev_instance=instance,
        role=ROLE_MASTER if is_master else ROLE_SLAVE, mode=mode,
        zero_copy=not is_master and not mp.no_zero_copy,
        ring_size=ring, buffer_size=mp.buffer_size or DEFAULT_BUFFER_SIZE, secret=mp.secret)
    return {"sw_if_index": iface.sw_if_index}


@HANDLERS.handler("memif_create")
def memif_create(emu, mp):
    return _create(emu, mp, False)


@HANDLERS.handler("memif_create_v2")
def memif_create_v2(emu, mp):
    return _create(emu, mp, bool(mp.use_dma))


@HANDLERS.handler("memif_delete")
def memif_delete(emu, mp):
    iface = emu.interfaces.get(mp.sw_if_index)
    if iface is None or iface.owner != "memif":
        raise VppRetval(Retval.INVALID_SW_IF_INDEX, "not a memif")
    emu.interfaces.remove(iface.sw_if_index)
    return {}


@HANDLERS.handler("memif_dump")
def memif_dump(emu, mp):
    st = emu.state(MemifState)
    out = []
    for mif in sorted(st.memifs.values(), key=lambda m: m.dev_instance):
        iface = emu.interfaces.get(mif.sw_if_index)
        if iface is None:
            continue
        out.append({
            "sw_if_index": mif.sw_if_index,
            "hw_addr": iface.mac if iface.mac else ZERO_MAC,
            "id": mif.id,
            "role": mif.role,
            "mode": mif.mode,
            "zero_copy": mif.zero_copy,
            "socket_id": mif.socket_id,
            # Negotiated values, unset until a peer connects (never, here).
            "ring_size": 1,
            "buffer_size": 0,
            "flags": iface.api_flags,
            "if_name": iface.name,
        })
    return out
