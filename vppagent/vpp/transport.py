"""VPP's API socket protocol: framing over a unix stream socket.

Owns: opening the socket (with one clear error when it cannot), writing many
framed messages in one system call, and reading frames out of large buffered
reads. Knows nothing of message contents; the client decodes them.

Each message on the wire is a 16-byte header ``>QII`` (queue, length, gc mark;
only the length matters) followed by the message itself.
"""
from __future__ import annotations

import errno
import os
import socket
import struct
from typing import Iterator

from .errors import VppConnectError, VppDisconnectedError

HEADER = struct.Struct(">QII")
_READ_CHUNK = 1 << 18


def frame(msg: bytes) -> bytes:
    return HEADER.pack(0, len(msg), 0) + msg


class SocketTransport:
    def __init__(self, path: str, timeout: float):
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._pos = 0

    def open(self) -> None:
        if not os.path.exists(self.path):
            raise VppConnectError(
                f"VPP API socket {self.path} does not exist (is VPP running? "
                "check 'socksvr { socket-name ... }' in startup.conf)"
            )
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as e:
            sock.close()
            if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
                why = "nothing is listening (VPP not running?)"
            elif e.errno == errno.ENOTSOCK:
                why = "it is not a socket"
            elif e.errno == errno.EACCES:
                why = "permission denied"
            else:
                why = e.strerror or str(e)
            raise VppConnectError(f"cannot connect to VPP API socket {self.path}: {why}") from e
        self._sock = sock
        self._buf = bytearray()
        self._pos = 0

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def send(self, msgs: list[bytes]) -> None:
        sock = self._sock
        if sock is None:
            raise VppDisconnectedError(f"not connected to VPP at {self.path}")
        data = b"".join(HEADER.pack(0, len(m), 0) + m for m in msgs) if len(msgs) != 1 else frame(msgs[0])
        try:
            sock.sendall(data)
        except OSError as e:
            raise VppDisconnectedError(f"VPP at {self.path} went away while sending: {e}") from e

    def frames(self, blocking_timeout: float | None) -> Iterator[bytes]:
        """Yield complete frames; end on EOF. Raises on socket errors."""
        sock = self._sock
        if sock is None:
            return
        sock.settimeout(blocking_timeout)
        buf = self._buf
        hsize = HEADER.size
        while True:
            # The read position lives on self so that a consumer that stops
            # after one frame (the handshake) does not see it again later.
            while len(buf) - self._pos >= hsize:
                pos = self._pos
                _, length, _ = HEADER.unpack_from(buf, pos)
                end = pos + hsize + length
                if end > len(buf):
                    break
                self._pos = end
                yield bytes(buf[pos + hsize:end])
            if self._pos:
                del buf[: self._pos]
                self._pos = 0
            chunk = sock.recv(_READ_CHUNK)
            if not chunk:
                return
            buf += chunk

    def read_one(self) -> bytes:
        """Read exactly one frame, for the handshake before the reader starts."""
        for msg in self.frames(self.timeout):
            return msg
        raise VppDisconnectedError(f"VPP at {self.path} closed the connection during handshake")

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
