"""Validating readers for the fields of one Kubernetes API object.

Owns: turning loosely typed JSON (the dicts the API server sends) into typed,
immutable Python values, and naming the exact field path when that fails.
Also owns ``FrozenMap``, the hashable mapping used for labels and annotations.

Must not touch: the meaning of fields (that belongs to the per-kind modules),
the network, logging.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NoReturn, TypeVar

from vppagent.iptypes import IpAddress as IPAddress
from vppagent.iptypes import IpNetwork as IPNetwork

from .errors import InvalidObject

# IANA service names (RFC 6335), which Kubernetes uses for named ports.
_IANA_SVC_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")

E = TypeVar("E")


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable ``str -> str`` mapping (labels, annotations).

    Keys iterate in sorted order so that two maps with the same content have
    the same repr, which keeps test failures and logs readable.
    """

    __slots__ = ("_data", "_hash")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()):
        pairs = items.items() if isinstance(items, Mapping) else items
        self._data: dict[str, str] = dict(sorted(pairs))
        self._hash: int | None = None

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


EMPTY_MAP = FrozenMap()


def _show(value: Any) -> str:
    """A short repr for error messages: objects can carry large blobs."""
    text = repr(value)
    return text if len(text) <= 64 else text[:61] + "..."


class Reader:
    """Reads fields of one object; every failure names the object and field.

    One Reader per object being converted. Paths are JSON-ish
    (``spec.ports[2].port``) because that is what ``kubectl explain`` and
    operators use.
    """

    def __init__(self, kind: str, namespace: str = "", name: str = ""):
        self.kind = kind
        self.namespace = namespace
        self.name = name

    def fail(self, path: str, reason: str) -> NoReturn:
        raise InvalidObject(self.kind, self.namespace, self.name, path, reason)

    # -- containers ---------------------------------------------------------

    def mapping(self, value: Any, path: str) -> Mapping[str, Any]:
        """A JSON object; null or absent reads as empty."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, f"expected an object, got {_show(value)}")
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        """A JSON array; null or absent reads as empty."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {_show(value)}")
        return value

    def str_map(self, value: Any, path: str, prefixes: tuple[str, ...] = ()) -> FrozenMap:
        """Labels or annotations; with ``prefixes``, keeps only matching keys."""
        raw = self.mapping(value, path)
        out: list[tuple[str, str]] = []
        for key, val in raw.items():
            if prefixes and not key.startswith(prefixes):
                continue
            if not isinstance(key, str) or not isinstance(val, str):
                self.fail(f"{path}[{key!r}]", f"expected a string value, got {_show(val)}")
            out.append((key, val))
        return FrozenMap(out) if out else EMPTY_MAP

    # -- scalars ------------------------------------------------------------

    def string(self, value: Any, path: str, *, required: bool = False, default: str = "") -> str:
        if value is None or value == "":
            if required:
                self.fail(path, "is required")
            return default
        if not isinstance(value, str):
            self.fail(path, f"expected a string, got {_show(value)}")
        return value

    def boolean(self, value: Any, path: str, *, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {_show(value)}")
        return value

    def integer(self, value: Any, path: str, *, lo: int, hi: int) -> int:
        # bool is an int subclass; JSON true is never a valid number here.
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"expected an integer, got {_show(value)}")
        if not lo <= value <= hi:
            self.fail(path, f"{value} is out of range {lo}..{hi}")
        return value

    def port(self, value: Any, path: str) -> int:
        return self.integer(value, path, lo=1, hi=65535)

    def port_name(self, value: Any, path: str) -> str:
        name = self.string(value, path, required=True)
        if not _IANA_SVC_NAME.match(name) or "--" in name:
            self.fail(path, f"{_show(name)} is not a valid port name (IANA service name)")
        return name

    def int_or_name(self, value: Any, path: str) -> int | str:
        """A port given as a number or as a named port (IntOrString)."""
        if isinstance(value, str):
            return self.port_name(value, path)
        return self.port(value, path)

    def enum(self, value: Any, path: str, enum_type: type[E], *, default: E | None = None) -> E:
        if value is None or value == "":
            if default is None:
                self.fail(path, "is required")
            return default
        try:
            return enum_type(value)  # type: ignore[call-arg]
        except ValueError:
            allowed = ", ".join(m.value for m in enum_type)  # type: ignore[attr-defined]
            self.fail(path, f"{_show(value)} is not one of {allowed}")

    # -- addresses ----------------------------------------------------------

    def ip(self, value: Any, path: str) -> IPAddress:
        if not isinstance(value, str):
            self.fail(path, f"expected an IP address, got {_show(value)}")
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            self.fail(path, f"{_show(value)} is not a valid IP address")

    def cidr(self, value: Any, path: str) -> IPNetwork:
        """A CIDR; host bits are cleared (``10.0.0.1/24`` reads as ``10.0.0.0/24``).

        The API server has accepted such values in some fields for years, so
        rejecting them would turn a harmless oddity into an outage.
        """
        if not isinstance(value, str) or "/" not in value:
            self.fail(path, f"{_show(value)} is not a valid CIDR")
        try:
            return ipaddress.ip_network(value, strict=False)
        except ValueError:
            self.fail(path, f"{_show(value)} is not a valid CIDR")


def read_metadata(kind: str, obj: Any, *, namespaced: bool) -> tuple[Reader, Mapping[str, Any]]:
    """Start reading an object: check its metadata, return a Reader naming it."""
    if not isinstance(obj, Mapping):
        raise InvalidObject(kind, "", "", "", f"expected an object, got {_show(obj)}")
    meta = obj.get("metadata")
    probe = Reader(kind)
    meta = probe.mapping(meta, "metadata")
    name = probe.string(meta.get("name"), "metadata.name", required=True)
    namespace = ""
    if namespaced:
        namespace = Reader(kind, "", name).string(
            meta.get("namespace"), "metadata.namespace", required=True
        )
    return Reader(kind, namespace, name), meta
