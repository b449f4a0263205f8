"""The API definitions the emulator serves, and its message-ID table.

Owns: reading every ``*.api.json`` file of a definition directory (VPP's
installed ``/usr/share/vpp/api`` layout: ``core/`` and ``plugins/``), giving
each message an ID the way a VPP with all those plugins loaded would, and
packing messages with vpp_papi's serializer and decoding requests with
the client's compiled codec.

Message IDs: memclnt's messages take 1..N in file order (so ``sockclnt_create``
is 15 and ``control_ping`` 23, which clients rely on before they have the
table); then every other file's messages follow, core files sorted by name,
then plugin files sorted by name, each file a contiguous range like VPP's
per-module ``msg_id_base``. A range is named ``<module>_<file crc>`` as VPP
names it for ``get_first_msg_id``.

Must not: know what a message means; handlers do.
"""
from __future__ import annotations

import json
import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpp_papi.vpp_papi import VPPApiJSONFiles
from vpp_papi.vpp_serializer import BaseTypes, String, VPPType, VPPTypeAlias

from vppagent.vpp.codec import compile_unpacker
from vppagent.vpp.errors import ApiDefinitionsError

log = logging.getLogger(__name__)

FRAME_HEADER = struct.Struct(">QII")
U16 = struct.Struct(">H")
# Requests start with msg id, client_index, context; replies with msg id, context.
REQUEST_HEADER = struct.Struct(">HII")


@dataclass(frozen=True)
class ApiFile:
    module: str
    path: Path
    crc: int
    version: tuple[int, int, int]
    first_msg_id: int
    n_messages: int

    @property
    def range_name(self) -> str:
        return f"{self.module}_{self.crc:08x}"


@dataclass
class MessageDef:
    """One message: its ID, name, CRC and vpp_papi serializer."""

    id: int
    name: str
    crc: str
    module: str
    codec: Any  # vpp_papi VPPMessage
    fields: frozenset[str] = field(default_factory=frozenset)
    # Only the header (msg id, client_index, context): decoded without vpp_papi.
    header_only: bool = False
    # String fields (possibly nested) that must be cut to fit, as VPP's strncpy does.
    has_strings: bool = False
    # Scalar alias fields (interface_index...): vpp_papi packs an absent one
    # with whatever default another message gave the shared alias (~0 for
    # interface_index); VPP zeroes what it does not set, so we give 0.
    zero_fields: tuple[str, ...] = ()
    # Compiled on first use: most messages are never received.
    _decoder: Any = None

    def decode(self, data: bytes) -> Any:
        """The request as vpp_papi's unpack gives it (namedtuple, converted types)."""
        if self._decoder is None:
            # The client's compiled codec: the same bytes mean the same values
            # on both sides of the socket, and one compiler to keep right.
            self._decoder = compile_unpacker(self.codec) or (lambda b, m=self.codec: m.unpack(b)[0])
        return self._decoder(data)

    @property
    def name_crc(self) -> str:
        return f"{self.name}_{self.crc[2:]}"

    def pack(self, fields: dict[str, Any]) -> bytes:
        for name in self.zero_fields:
            if name not in fields:
                fields[name] = 0
        if self.has_strings:
            fields = fit_strings(self.codec, fields)
        return self.codec.pack(fields)


@dataclass(frozen=True)
class Service:
    """How a request is answered (from the ``services`` section)."""

    request: str
    reply: str | None  # None: the request has no reply (VPP's 'null')
    kind: str  # "single", "dump" (details then client's ping), "stream" (details then reply)
    details: str | None = None
    events: tuple[str, ...] = ()


@dataclass
class ApiDefinitions:
    directory: Path
    files: list[ApiFile]
    by_name: dict[str, MessageDef]
    by_id: list[MessageDef | None]
    services: dict[str, Service]
    # Raw JSON text of every file, for get_api_json (bootstrap clients).
    json_texts: list[str]

    def message(self, name: str) -> MessageDef:
        return self.by_name[name]

    def message_table(self) -> list[dict[str, Any]]:
        return [{"index": m.id, "name": m.name_crc} for m in self.by_id if m is not None]

    def range_first_id(self, range_name: str) -> int | None:
        for f in self.files:
            if f.range_name == range_name:
                return f.first_msg_id
        return None


def resolve_api_dir(configured: str | os.PathLike | None) -> Path:
    """The configured directory, else $VPPAGENT_API_DIR, else VPP's installed one."""
    chosen = configured or os.environ.get("VPPAGENT_API_DIR") or "/usr/share/vpp/api"
    path = Path(chosen)
    if not path.is_dir():
        raise ApiDefinitionsError(f"API definition directory {path} does not exist")
    return path


def _order_key(root: Path, path: Path) -> tuple[int, str]:
    rel = path.relative_to(root)
    if path.name == "memclnt.api.json":
        return (0, str(rel))
    return (1 if "core" in rel.parts[:-1] else 2, str(rel))


def _find_files(root: Path) -> list[Path]:
    files = [Path(d) / f for d, _, names in os.walk(root) for f in names if f.endswith(".api.json")]
    return sorted(files, key=lambda p: _order_key(root, p))


def _services(raw: dict[str, dict]) -> dict[str, Service]:
    out: dict[str, Service] = {}
    for request, svc in raw.items():
        reply = svc.get("reply")
        events = tuple(svc.get("events", ()))
        if reply in (None, "null"):
            out[request] = Service(request, None, "single", events=events)
        elif "stream_msg" in svc:
            out[request] = Service(request, reply, "stream", svc["stream_msg"], events)
        elif svc.get("stream"):
            out[request] = Service(request, reply, "dump", reply, events)
        else:
            out[request] = Service(request, reply, "single", events=events)
    return out


def load_definitions(api_dir: str | os.PathLike | None = None) -> ApiDefinitions:
    """Load every definition file under the directory and number the messages."""
    root = resolve_api_dir(api_dir)
    paths = _find_files(root)
    if not any(p.name == "memclnt.api.json" for p in paths):
        raise ApiDefinitionsError(
            f"{root} holds no memclnt.api.json: not a VPP API definition directory"
        )
    files: list[ApiFile] = []
    by_name: dict[str, MessageDef] = {}
    by_id: list[MessageDef | None] = [None]  # ID 0 is never used by VPP
    raw_services: dict[str, dict] = {}
    texts: list[str] = []
    for path in paths:
        try:
            text = path.read_text()
            api = json.loads(text)
        except (OSError, ValueError) as e:
            raise ApiDefinitionsError(f"cannot read API definitions {path}: {e}") from e
        order = [m[0] for m in api.get("messages", [])]
        crcs = {m[0]: m[-1]["crc"] for m in api.get("messages", [])}
        module = api.get("module") or path.name.split(".")[0]
        # vpp_papi's parser (mutates the dict, so it gets its own copy).
        messages, services = VPPApiJSONFiles.process_json_str(text)
        first = len(by_id)
        for name in order:
            if name in by_name:
                log.warning("message defined twice; keeping the first",
                            extra={"api_message": name, "file": str(path)})
                continue
            codec = messages[name]
            mdef = MessageDef(
                id=len(by_id), name=name, crc=crcs[name], module=module, codec=codec,
                fields=frozenset(codec.fields),
                header_only=list(codec.fields) == ["_vl_msg_id", "client_index", "context"],
                has_strings=_has_strings(codec),
                zero_fields=_scalar_aliases(codec),
            )
            by_name[name] = mdef
            by_id.append(mdef)
        raw_services.update(services)
        version = api.get("options", {}).get("version", "0.0.0")
        files.append(ApiFile(module, path, int(api.get("vl_api_version", "0x0"), 16),
                             _version(version), first, len(by_id) - first))
        texts.append(text)
    if len(by_id) > 0xFFFF:
        raise ApiDefinitionsError(f"{root}: too many messages ({len(by_id)}) for 16-bit IDs")
    for must, want in (("sockclnt_create", 15), ("sockclnt_create_reply", 16),
                       ("control_ping", 23), ("control_ping_reply", 24)):
        got = by_name.get(must)
        if got is None or got.id != want:
            raise ApiDefinitionsError(
                f"{root}: memclnt.api.json does not give {must} ID {want}; "
                "not a VPP 20.x+ definition set"
            )
    return ApiDefinitions(root, files, by_name, by_id, _services(raw_services), texts)


def _version(text: str) -> tuple[int, int, int]:
    parts = (text.split(".") + ["0", "0", "0"])[:3]
    try:
        return (int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return (0, 0, 0)


def _scalar_aliases(codec: VPPType) -> tuple[str, ...]:
    return tuple(name for name, p in zip(codec.fields, codec.packers)
                 if isinstance(p, VPPTypeAlias) and isinstance(p.packer, BaseTypes))


def _has_strings(codec: VPPType) -> bool:
    for p in codec.packers:
        if isinstance(p, String):
            return True
        if isinstance(p, VPPType) and _has_strings(p):
            return True
    return False


def fit_strings(codec: VPPType, fields: dict[str, Any]) -> dict[str, Any]:
    """Cut fixed-size strings to what fits, as VPP's strncpy into the message does.

    vpp_papi refuses to pack an over-long string; VPP silently truncates.
    """
    out = None
    for name, p in zip(codec.fields, codec.packers):
        value = fields.get(name)
        if value is None:
            continue
        new = value
        if isinstance(p, String) and p.limit and isinstance(value, str):
            raw = value.encode()
            if len(raw) > p.limit - 1:
                new = raw[: p.limit - 1].decode(errors="ignore")
        elif isinstance(p, VPPType) and isinstance(value, dict) and _has_strings(p):
            new = fit_strings(p, value)
        if new is not value:
            if out is None:
                out = dict(fields)
            out[name] = new
    return fields if out is None else out
