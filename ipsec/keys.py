"""A node's X25519 key pair: the private key file and the public key annotation.

Owns: loading or creating the private key file (32 raw bytes, mode 0600,
created atomically: written to a 0600 temporary file in the same directory,
fsynced, then renamed, so a crash never leaves a partial or world-readable
key), checking its permissions and contents, and the encoding of the public
key published as a Node annotation (standard base64 of the 32 raw bytes, the
same encoding WireGuard uses). The same key type serves IPsec
(``vppagent.io/ipsec-public-key``) and WireGuard
(``vppagent.io/wireguard-public-key``), from two separate files.

THE PRIVATE KEY IS A SECRET: ``NodeKey`` keeps it out of its repr, and no
error, log line or metric here contains it.

Must not touch: VPP, Kubernetes (publishing the annotation is a source's
job; this module only gives the string).
"""
from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from vppagent.atomic import private_dir, write_bytes

from .errors import BadPeerKey, KeyFileError

log = logging.getLogger(__name__)

KEY_LEN = 32
IPSEC_PUBLIC_KEY = "vppagent.io/ipsec-public-key"
WIREGUARD_PUBLIC_KEY = "vppagent.io/wireguard-public-key"


@dataclass(frozen=True)
class NodeKey:
    """This node's key pair (raw 32-byte X25519 keys)."""

    private: bytes = field(repr=False)
    public: bytes

    @staticmethod
    def from_private(private: bytes) -> "NodeKey":
        sk = X25519PrivateKey.from_private_bytes(private)
        return NodeKey(private, sk.public_key().public_bytes_raw())

    @staticmethod
    def generate() -> "NodeKey":
        return NodeKey.from_private(X25519PrivateKey.generate().private_bytes_raw())

    def exchange(self, peer_public: bytes) -> bytes:
        """The X25519 shared secret with ``peer_public``; ValueError for a low-order point
        (callers name the peer in the error they raise)."""
        return X25519PrivateKey.from_private_bytes(self.private).exchange(
            X25519PublicKey.from_public_bytes(peer_public))

    @property
    def annotation(self) -> str:
        return encode_public(self.public)


def encode_public(public: bytes) -> str:
    if len(public) != KEY_LEN:
        raise ValueError(f"an X25519 public key is {KEY_LEN} bytes, got {len(public)}")
    return base64.b64encode(public).decode("ascii")


def decode_public(value: str | None, *, node: str, annotation: str = IPSEC_PUBLIC_KEY) -> bytes:
    """The 32-byte public key in a Node annotation; BadPeerKey if missing or malformed.

    The error describes the value (length) but never repeats it.
    """
    if value is None or not value.strip():
        raise BadPeerKey(node, annotation, "missing")
    text = value.strip()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadPeerKey(node, annotation, f"not base64 ({len(text)} characters)") from None
    if len(raw) != KEY_LEN:
        raise BadPeerKey(node, annotation, f"decodes to {len(raw)} bytes, an X25519 key is {KEY_LEN}")
    if raw == bytes(KEY_LEN):
        raise BadPeerKey(node, annotation, "the all-zero key is not a valid public key")
    return raw


def load_or_create(path: str | os.PathLike[str]) -> NodeKey:
    """This node's key from ``path``, creating it (0600, atomically) if it does not exist.

    Raises KeyFileError if the file exists but is not a regular file, is
    readable or writable by group/others, or does not hold exactly 32 bytes.
    A bad file is never replaced: the operator decides (a new key changes
    the published public key and rekeys every pair).
    """
    p = Path(path)
    try:
        return load(p)
    except FileNotFoundError:
        pass
    key = NodeKey.generate()
    _write_atomically(p, key.private)
    log.info("created node private key", extra={"path": str(p), "mode": "0600"})
    # Another agent may have won the race: whatever is on disk is the key.
    return load(p)


def load(path: str | os.PathLike[str]) -> NodeKey:
    """Load an existing key file; FileNotFoundError if absent, KeyFileError if unusable."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise KeyFileError(str(p), f"cannot open: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(str(p), "not a regular file")
        if st.st_mode & 0o077:
            raise KeyFileError(str(p), f"mode {stat.S_IMODE(st.st_mode):04o} lets group or others "
                                       "read or write it; it must be 0600")
        data = os.read(fd, KEY_LEN + 1)
    finally:
        os.close(fd)
    if len(data) != KEY_LEN:
        raise KeyFileError(str(p), f"holds {len(data) if len(data) <= KEY_LEN else 'more than 32'} bytes, "
                                   f"a key is {KEY_LEN}")
    if data == bytes(KEY_LEN):
        raise KeyFileError(str(p), "all zeros (corrupt)")
    return NodeKey.from_private(data)


def _write_atomically(path: Path, data: bytes) -> None:
    private_dir(path.parent)  # a pre-existing hostPath directory is 0755: keys are private
    write_bytes(path, data, 0o600, exclusive=True)  # never overwrite a key someone else wrote
