"""A tiny OCI image built from the host's static busybox, for ``ctr image import``.

Owns the image layout the containerd tier runs: one uncompressed layer
holding ``/bin/busybox`` and the applet links the tests use, an image
config, a manifest, and an OCI image-layout tar (``oci-layout``,
``index.json``, ``blobs/sha256/...``). Everything is built in memory from
the local file, so the tier needs no registry and no network.
"""
from __future__ import annotations

import hashlib
import io
import json
import platform
import tarfile
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = "/usr/bin/busybox"
APPLETS = ("sh", "ip", "ping", "nc", "sleep", "cat", "echo", "hostname", "grep", "seq", "head")
# Mount points runc expects to find (it creates them otherwise, in a read-write rootfs).
DIRS = ("bin", "dev", "proc", "sys", "etc", "tmp", "root")
IMAGE_REF = "localhost/vppagent-busybox:test"

_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_CONFIG = "application/vnd.oci.image.config.v1+json"
_LAYER = "application/vnd.oci.image.layer.v1.tar"


class ImageBuildError(RuntimeError):
    """The image could not be built from the host's files."""


@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self, **extra: object) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data), **extra}


def _goarch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _add(tar: tarfile.TarFile, name: str, *, kind: bytes, mode: int, data: bytes = b"",
         link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid = info.gid = 0
    info.mtime = 0  # a reproducible layer: same input, same digest
    info.linkname = link
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data else None)


def _has_interpreter(elf: bytes) -> bool:
    """Whether a 64-bit little-endian ELF asks for a dynamic loader (a PT_INTERP header)."""
    if elf[4] != 2 or elf[5] != 1:
        raise ImageBuildError("busybox is not a 64-bit little-endian ELF")
    phoff = int.from_bytes(elf[0x20:0x28], "little")
    phentsize = int.from_bytes(elf[0x36:0x38], "little")
    phnum = int.from_bytes(elf[0x38:0x3A], "little")
    return any(int.from_bytes(elf[phoff + i * phentsize:phoff + i * phentsize + 4], "little") == 3
               for i in range(phnum))


def layer(busybox: str = BUSYBOX, applets: tuple[str, ...] = APPLETS) -> bytes:
    """The rootfs layer: busybox plus a symlink per applet."""
    path = Path(busybox)
    if not path.is_file():
        raise ImageBuildError(f"{busybox} does not exist: install busybox-static")
    data = path.read_bytes()
    if not data.startswith(b"\x7fELF"):
        raise ImageBuildError(f"{busybox} is not an ELF executable")
    if _has_interpreter(data):
        raise ImageBuildError(f"{busybox} is dynamically linked: the image has no libc "
                              "(install busybox-static)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in DIRS:
            _add(tar, d, kind=tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
        _add(tar, "bin/busybox", kind=tarfile.REGTYPE, mode=0o755, data=data)
        for applet in applets:
            _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, mode=0o777, link="busybox")
    return buf.getvalue()


def oci_archive(ref: str = IMAGE_REF, busybox: str = BUSYBOX) -> bytes:
    """An OCI image-layout tar naming the image ``ref`` (as ``ctr image import`` reads it)."""
    rootfs = Blob(layer(busybox), _LAYER)
    config = Blob(json.dumps({
        "architecture": _goarch(), "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [rootfs.digest]},
    }, sort_keys=True).encode(), _CONFIG)
    manifest = Blob(json.dumps({
        "schemaVersion": 2, "mediaType": _MANIFEST,
        "config": config.descriptor(), "layers": [rootfs.descriptor()],
    }, sort_keys=True).encode(), _MANIFEST)
    index = {"schemaVersion": 2, "manifests": [manifest.descriptor(
        platform={"architecture": _goarch(), "os": "linux"},
        annotations={"io.containerd.image.name": ref,
                     "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[-1]})]}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add(tar, "oci-layout", kind=tarfile.REGTYPE, mode=0o644,
             data=json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        _add(tar, "index.json", kind=tarfile.REGTYPE, mode=0o644, data=json.dumps(index).encode())
        _add(tar, "blobs", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "blobs/sha256", kind=tarfile.DIRTYPE, mode=0o755)
        for blob in (rootfs, config, manifest):
            _add(tar, f"blobs/sha256/{blob.digest.split(':', 1)[1]}", kind=tarfile.REGTYPE,
                 mode=0o644, data=blob.data)
    return buf.getvalue()
