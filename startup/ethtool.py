"""The kernel driver behind a network interface (ETHTOOL_GDRVINFO ioctl).

Owns one read-only query. An ioctl on a socket answers for the caller's
netns, unlike ``/sys/class/net``, which shows the netns sysfs was mounted in.
"""
from __future__ import annotations

import ctypes
import fcntl
import socket
import struct
from dataclasses import dataclass

_SIOCETHTOOL = 0x8946
_ETHTOOL_GDRVINFO = 0x00000003
# struct ethtool_drvinfo: cmd, driver[32], version[32], fw_version[32],
# bus_info[32], erom_version[32], reserved2[12], 5 x u32 counters.
_DRVINFO = struct.Struct("I32s32s32s32s32s12s5I")


@dataclass(frozen=True)
class DriverInfo:
    driver: str
    bus_info: str  # a PCI address for PCI NICs, empty for virtual devices


def driver_info(ifname: str) -> DriverInfo:
    """Driver and bus of ``ifname``; ``DriverInfo("", "")`` when the device reports none."""
    buf = ctypes.create_string_buffer(_DRVINFO.pack(_ETHTOOL_GDRVINFO, *([b""] * 6), *([0] * 5)))
    ifreq = struct.pack("16sP", ifname.encode()[:15], ctypes.addressof(buf))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            fcntl.ioctl(s.fileno(), _SIOCETHTOOL, ifreq)
        except OSError:
            return DriverInfo("", "")
    fields = _DRVINFO.unpack(buf.raw[:_DRVINFO.size])
    return DriverInfo(fields[1].split(b"\0", 1)[0].decode(), fields[4].split(b"\0", 1)[0].decode())


_ETHTOOL_STXCSUM = 0x17
_ETHTOOL_STSO = 0x1F
_ETHTOOL_SGSO = 0x24
_VALUE = struct.Struct("II")


def _set_value(ifname: str, cmd: int, value: int) -> None:
    buf = ctypes.create_string_buffer(_VALUE.pack(cmd, value))
    ifreq = struct.pack("16sP", ifname.encode()[:15], ctypes.addressof(buf))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), _SIOCETHTOOL, ifreq)


def disable_offloads(ifname: str) -> None:
    """Checksums computed and segments cut by the kernel before a frame leaves ``ifname``.

    Needed on a veth whose frames are read raw by af_packet and sent on to a
    wire: a partial checksum or a 64k GSO frame would not survive the copy.
    """
    _set_value(ifname, _ETHTOOL_STXCSUM, 0)
    for cmd in (_ETHTOOL_STSO, _ETHTOOL_SGSO):
        try:
            _set_value(ifname, cmd, 0)
        except OSError:  # already off and fixed for this device
            pass
