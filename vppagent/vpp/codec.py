"""Compiled packers and unpackers for VPP binary-API messages.

Owns: turning a vpp_papi message definition (a ``VPPMessage`` parsed from the
``*.api.json`` files) into specialised Python functions that produce exactly
the bytes ``msg.pack(d)`` produces and the same values ``msg.unpack(b)[0]``
returns, several times faster; and :class:`Codec`, the per-connection cache
that hands out those functions (or vpp_papi's own, when a shape is not
compiled).

Why: vpp_papi's generic serializer walks a tree of packer objects for every
message, which caps bulk programming at ~12k route adds/s while VPP takes
~190k/s. Here the tree is walked once: fixed parts become one flattened
``struct.Struct`` per run of fixed fields, and the generated source is
``exec``'d and cached.

Fidelity contract: the compiled functions copy vpp_papi 2.4.2's behaviour,
quirks included, because the bytes on the wire must not depend on which path
packed them. Notably (see vpp_serializer.py):

* a missing or ``None`` field packs as its JSON ``default`` option, else 0 --
  and the option travels with the *packer object*, so the compiler reads the
  parsed packer tree, not the JSON;
* a variable-length array's count field is never filled in: it must be given
  and equal ``len(list)`` whenever the list is non-empty;
* fixed arrays of non-u8 elements must be given with exactly their length;
* a struct given as any falsy value packs all defaults;
* conversions (addresses, prefixes, MACs from strings or ``ipaddress``
  objects) are selected by the value's type *name*, as vpp_format does;
* an empty variable-length string unpacks as size 0 (vpp_papi does not skip
  its 4-byte length), so later fields are read from there, as vpp_papi does.

Whatever the compiler does not fast-path it delegates, for that one field, to
the vpp_papi packer object of that field with the arguments vpp_papi itself
would pass, so odd inputs still get vpp_papi's exact answer. Shapes it cannot
reproduce at all make ``compile_*`` return ``None``.

Must not: talk to VPP, or be imported outside ``vppagent.vpp``.
"""
from __future__ import annotations

import ipaddress
import itertools
import logging
import struct
from socket import AF_INET, AF_INET6, inet_pton
from typing import Any, Callable, Literal, Mapping

from vpp_papi import vpp_format as _vf
from vpp_papi import vpp_serializer as _vs
from vpp_papi.macaddress import MACAddress

from .errors import ApiDefinitionsError

log = logging.getLogger(__name__)

Packer = Callable[[Any], bytes]
Unpacker = Callable[[bytes], tuple]
Direction = Literal["pack", "unpack", "both"]

__all__ = ["Codec", "compile_packer", "compile_unpacker", "Packer", "Unpacker"]

_VSE = _vs.VPPSerializerValueError

# The vpp_papi whose serializer this module reproduces (pinned in
# pyproject.toml); tests/unit/test_codec.py proves it against that version.
CHECKED_VPP_PAPI = "2.4.2"


def _vpp_papi_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("vpp_papi")
    except Exception:  # not installed as a distribution (vendored copy)
        return None


class _Unsupported(Exception):
    """A shape this compiler does not reproduce; the caller keeps vpp_papi."""


# Struct codes of vpp_papi's BaseTypes, without their byte-order prefix: every
# integer is big-endian, so runs of them share one '>' struct.
_BASE_FMT = {
    "u8": "B", "i8": "b", "u16": "H", "i16": "h", "u32": "I", "i32": "i",
    "u64": "Q", "i64": "q", "bool": "?",
}
# f64 alone is packed '=d' (native order) by vpp_papi, so it cannot live in a
# '>' struct; it gets an 8-byte slot of its own.
_F64 = struct.Struct("=d")
_U32 = struct.Struct(">I")

# Never mutated: generated code only reads it (it stands for "all defaults").
_EMPTY: dict[str, Any] = {}


# -- conversions -------------------------------------------------------------


def _address_from_str(s: str) -> dict[str, Any]:
    """vpp_format.format_vl_api_address_t without its raise-and-catch for IPv4.

    vpp_format tries AF_INET6 first and falls back to AF_INET on OSError; an
    IPv6 text form always contains ':', so without one the first attempt can
    only fail, and raising costs more than the rest of packing a route.
    """
    if ":" in s:
        try:
            return {"un": {"ip6": inet_pton(AF_INET6, s)}, "af": 1}
        except OSError:
            pass
    return {"un": {"ip4": inet_pton(AF_INET, s)}, "af": 0}


def _prefix_from_str(s: str) -> dict[str, Any]:
    # Same as vpp_format's str branch for prefix_t / address_with_prefix_t
    # (host bits are kept, the length is int()'d).
    p, length = s.split("/")
    return {"address": _address_from_str(p), "len": int(length)}


_PACK_OVERRIDES: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("vl_api_address_t", "str"): _address_from_str,
    ("vl_api_prefix_t", "str"): _prefix_from_str,
    ("vl_api_address_with_prefix_t", "str"): _prefix_from_str,
}

# The vpp_format unpack lambdas for these only call the constructor.
_UNPACK_OVERRIDES: dict[str, Callable[[Any], Any]] = {
    "vl_api_ip4_address_t": ipaddress.IPv4Address,
    "vl_api_ip6_address_t": ipaddress.IPv6Address,
    "vl_api_mac_address_t": MACAddress,
    "vl_api_address_t": _vf.unformat_api_address_t,
    "vl_api_prefix_t": _vf.unformat_api_prefix_t,
    "vl_api_address_with_prefix_t": _vf.unformat_api_address_with_prefix_t,
}


def _pack_conversions(type_name: str) -> dict[str, Callable[[Any], Any]]:
    """Input conversions of a type, keyed by the input's type name (as vpp_format)."""
    table = dict(_vf.conversion_table.get(type_name, {}))
    for (tname, arg), fn in _PACK_OVERRIDES.items():
        if tname == type_name and arg in table:
            table[arg] = fn
    return table


def _unpack_conversion(type_name: str) -> Callable[[Any], Any] | None:
    if type_name not in _vf.conversion_unpacker_table:
        return None
    return _UNPACK_OVERRIDES.get(type_name, _vf.conversion_unpacker_table[type_name])


# -- shape helpers ------------------------------------------------------------


def _code(type_name: str) -> str:
    try:
        return _BASE_FMT[type_name]
    except KeyError:
        raise _Unsupported(f"base type {type_name}") from None


def _default(p: Any, fallback: Any = 0) -> Any:
    """What vpp_papi packs for None: the packer's 'default' option, else 0."""
    opts = p.options
    if opts and "default" in opts:
        return opts["default"]
    return fallback


def _is_u8_array(p: Any) -> bool:
    """A FixedList_u8, directly or through an alias: packs bytes, pads with zeros."""
    if isinstance(p, _vs.VPPTypeAlias):
        p = p.packer
    return isinstance(p, _vs.FixedList_u8)


def _pack_size(p: Any) -> int | None:
    """Bytes vpp_papi's p.pack() always returns, or None if it varies."""
    if type(p) is _vs.BaseTypes or isinstance(p, _vs.VPPEnumType):
        return p.size
    if isinstance(p, _vs.VPPTypeAlias):
        return _pack_size(p.packer)
    if isinstance(p, _vs.FixedList_u8):
        return p.num
    if isinstance(p, _vs.String):
        return p.limit if p.fixed else None
    if isinstance(p, _vs.FixedList):
        es = _pack_size(p.packer)
        return None if es is None else es * p.num
    if isinstance(p, _vs.VPPUnionType):
        sizes = [_pack_size(m) for m in p.packers.values()]
        if any(s is None or s > p.size for s in sizes):
            return None
        return p.size
    if isinstance(p, _vs.VPPType):
        total = 0
        for c in p.packers:
            s = _pack_size(c)
            if s is None:
                return None
            total += s
        return total
    return None


def _unpack_size(p: Any) -> int | None:
    """Bytes vpp_papi's p.unpack() always consumes, or None if it varies."""
    if type(p) is _vs.BaseTypes or isinstance(p, _vs.VPPEnumType):
        return p.size
    if isinstance(p, _vs.VPPTypeAlias):
        return _unpack_size(p.packer)
    if isinstance(p, _vs.FixedList_u8):
        return p.num
    if isinstance(p, _vs.String):
        return p.num if p.fixed else None
    if isinstance(p, _vs.FixedList):
        es = _unpack_size(p.packer)
        return None if es is None else es * p.num
    if isinstance(p, _vs.VPPUnionType):
        sizes = [_unpack_size(m) for m in p.packers.values()]
        if any(s is None for s in sizes):
            return None
        return max(sizes, default=0)
    if isinstance(p, _vs.VPPType):
        total = 0
        for c in p.packers:
            s = _unpack_size(c)
            if s is None:
                return None
            total += s
        return total
    return None


def _has_vla(p: Any) -> bool:
    """Whether p's packing reads a count field from its kwargs (a VLA below it)."""
    if isinstance(p, (_vs.VLAList, _vs.VLAList_legacy)):
        return True
    if isinstance(p, _vs.VPPTypeAlias):
        return _has_vla(p.packer)
    if isinstance(p, _vs.VPPUnionType):
        return any(_has_vla(m) for m in p.packers.values())
    if isinstance(p, _vs.VPPType):
        return any(_has_vla(c) for c in p.packers)
    return False


def _leaves(p: Any) -> int:
    """Rough count of struct slots p expands to when inlined (bounds code size)."""
    if isinstance(p, _vs.VPPType) and not isinstance(p, _vs.VPPUnionType):
        return sum(_leaves(c) for c in p.packers)
    if isinstance(p, _vs.FixedList):
        return p.num * _leaves(p.packer)
    if isinstance(p, _vs.VPPTypeAlias):
        return _leaves(p.packer)
    return 1


def _literal(value: Any) -> str | None:
    """Source text for simple constants, so generated code needs no lookup."""
    if value is None or type(value) in (int, bool):
        return repr(value)
    if type(value) is float and value == value and value not in (float("inf"), float("-inf")):
        return repr(value)
    return None


# -- normalisers: the slow half of each fast path -------------------------------
#
# Generated code handles the common input inline (a dict for a struct, bytes of
# the right length for an address) and calls one of these for anything else.
# Each reproduces what vpp_papi does with such an input.


def _struct_normalizer(t: Any) -> Callable[[Any], dict]:
    """Input of a struct -> the plain dict whose fields vpp_papi would pack."""
    fields = tuple(t.fields)
    convs = _pack_conversions(t.name)
    name = t.name

    def normalize(v: Any) -> dict:
        if not v:  # vpp_papi: "if not data" -> every field defaults
            return _EMPTY
        if type(v) is dict:
            return v
        conv = convs.get(type(v).__name__)
        if conv is not None:
            # vpp_papi packs the converted value with the same type again.
            return normalize(conv(v))
        # Anything else is indexed by field name, each of which must be in it.
        for a in fields:
            if a not in v:
                raise _VSE(f"Invalid argument: {v} expected {name}.{a}")
        return {a: v[a] for a in fields}

    return normalize


def _alias_struct_normalizer(alias: Any, inner: Callable[[Any], dict]) -> Callable[[Any], dict]:
    """Input of an alias of a struct (address_with_prefix -> prefix)."""
    convs = _pack_conversions(alias.name)
    dflt = _default(alias)

    def normalize(v: Any) -> dict:
        if type(v) is dict:
            return v
        if v:
            conv = convs.get(type(v).__name__)
            if conv is not None:
                # vpp_papi swallows these from a failed alias conversion and
                # packs the original value with the aliased type instead.
                try:
                    return inner(conv(v))
                except (OSError, TypeError):
                    pass
        if v is None:
            v = dflt
        return inner(v)

    return normalize


def _u8_array_normalizer(p: Any) -> Callable[[Any], Any]:
    """Value for a fixed u8 array slot (struct pads short bytes with zeros)."""
    alias = p if isinstance(p, _vs.VPPTypeAlias) else None
    arr = alias.packer if alias is not None else p
    num = arr.num
    label = arr.name

    def fixed(v: Any) -> Any:  # FixedList_u8.pack
        if not v:
            return b""
        if len(v) > num:
            raise _VSE(f'Fixed list length error for "{label}", got: {len(v)} expected: {num}')
        return v

    if alias is None:
        return fixed
    convs = _pack_conversions(alias.name)
    dflt = _default(alias)

    def normalize(v: Any) -> Any:  # VPPTypeAlias.pack
        if v:
            conv = convs.get(type(v).__name__)
            if conv is not None:
                try:
                    return fixed(conv(v))
                except (OSError, TypeError):
                    pass
        if v is None:
            v = dflt
        return fixed(v)

    return normalize


# Immutable, hashable inputs whose conversion is a pure function of their
# value: their packed bytes can be remembered.
_CACHEABLE = (
    str, ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network,
    ipaddress.IPv6Network, ipaddress.IPv4Interface, ipaddress.IPv6Interface,
)
_CONVERSION_CACHE_SIZE = 16384


def _converted_struct_packer(pack: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """A fixed-size struct callers usually give as text or an ipaddress object
    (address, prefix...): remember the bytes per input value.

    Services and routes repeat the same few addresses (the same VIP, the same
    zero source endpoint), and converting text costs more than packing the
    rest of a path.
    """
    by_str: dict[str, bytes] = {}
    by_obj: dict[tuple[type, Any], bytes] = {}

    def pack_converted(v: Any) -> bytes:
        t = type(v)
        if t is str:
            b = by_str.get(v)
            if b is None:
                b = pack(v)
                if len(by_str) >= _CONVERSION_CACHE_SIZE:
                    by_str.clear()
                by_str[v] = b
            return b
        if t in _CACHEABLE:
            key = (t, v)  # an address never equals a network, but be exact
            b = by_obj.get(key)
            if b is None:
                b = pack(v)
                if len(by_obj) >= _CONVERSION_CACHE_SIZE:
                    by_obj.clear()
                by_obj[key] = b
            return b
        return pack(v)

    return pack_converted


def _union_packer(u: Any) -> Callable[[Any, Any], bytes]:
    """VPPUnionType.pack: the first item's member, zero-padded to the union size."""
    size = u.size
    zero = bytes(size)
    members = dict(u.packers)
    # Members that are byte arrays take bytes as they are: the common case
    # (address_union from a converted address) never reaches vpp_papi.
    raw = {k: _pack_size(m) for k, m in members.items() if _is_u8_array(m)}

    def pack_union(v: Any, kw: Any) -> bytes:
        if not v:
            return zero
        for k, x in v.items():
            break
        else:
            raise _VSE(f"empty union value {v!r} for {u.name}")
        n = raw.get(k)
        if n is not None and type(x) is bytes and len(x) <= n:
            return x.ljust(size, b"\x00")
        return members[k].pack(x, kw).ljust(size, b"\x00")

    return pack_union


def _fixed_string(p: Any) -> Callable[[Any], Any]:
    limit = p.limit

    def pack_string(v: Any) -> Any:  # String.pack, fixed: slot pads with zeros
        if not v:
            return b""
        if limit and len(v) > limit - 1:
            raise _VSE(f"Invalid argument length for: {v}, {len(v)} maximum {limit - 1}")
        return v.encode("ascii")

    return pack_string


def _variable_string(p: Any) -> Callable[[Any], bytes]:
    limit = p.limit
    pack_len = _U32.pack
    empty = pack_len(0)

    def pack_string(v: Any) -> bytes:  # String.pack, variable: u32 length + text
        if not v:
            return empty
        if limit and len(v) > limit - 1:
            raise _VSE(f"Invalid argument length for: {v}, {len(v)} maximum {limit - 1}")
        return pack_len(len(v)) + v.encode("ascii")

    return pack_string


# -- element packers (array members: vpp_papi packs them with no kwargs) --------

_elem_cache: dict[int, tuple[Any, Callable[[Any], bytes]]] = {}


def _element_packer(p: Any) -> Callable[[Any], bytes]:
    hit = _elem_cache.get(id(p))
    if hit is not None:
        return hit[1]
    fn: Callable[[Any], bytes]
    if isinstance(p, _vs.VPPType) and not isinstance(p, _vs.VPPUnionType):
        if _pack_conversions(p.name) and _pack_size(p) is not None:
            fn = _converted_leaf(p)  # lists of prefixes are mostly text
        else:
            fn = _compile_struct_packer(p, top=False)
    elif (type(p) is _vs.BaseTypes and p._type in _BASE_FMT) or isinstance(p, _vs.VPPEnumType):
        s = struct.Struct(">" + _code(p._type if type(p) is _vs.BaseTypes else p.enumtype))
        pk = s.pack
        dflt = _default(p)

        def fn(e: Any, pk: Callable = pk, dflt: Any = dflt) -> bytes:
            return pk(dflt if e is None else e)
    else:
        def fn(e: Any, p: Any = p) -> bytes:
            return p.pack(e, None)
    _elem_cache[id(p)] = (p, fn)
    return fn


def _fixed_list_packer(p: Any) -> Callable[[Any], bytes]:
    """FixedList of non-scalars: exactly num elements, each packed alone."""
    num = p.num
    ef = _element_packer(p.packer)
    zero: bytes | None = None
    if isinstance(p.packer, _vs.VPPType) and not isinstance(p.packer, _vs.VPPUnionType):
        # A falsy struct element packs all defaults: compute those bytes once
        # (label_stack is usually 16 empty labels).
        try:
            zero = ef(None)
        except Exception:
            zero = None

    all_zero = None if zero is None else zero * num

    def pack_list(v: Any) -> bytes:
        if len(v) != num:
            raise _VSE(f"Fixed list length error, got: {len(v)} expected: {num}")
        if zero is not None:
            if not any(v):
                return all_zero
            return b"".join([zero if not e else ef(e) for e in v])
        return b"".join([ef(e) for e in v])

    return pack_list


def _fixed_scalar_list(p: Any) -> Callable[[Any], list]:
    """FixedList of scalars: the values for num struct slots."""
    num = p.num
    dflt = _default(p.packer)

    def values(v: Any) -> list:
        if len(v) != num:
            raise _VSE(f"Fixed list length error, got: {len(v)} expected: {num}")
        return [dflt if e is None else e for e in v]

    return values


def _vla_packer(p: Any) -> Callable[[Any, Any], bytes]:
    """VLAList: packs nothing when empty, else checks the count field."""
    length_field = p.length_field
    u8 = p.packer.size == 1 and p.field_type == "u8"
    ef = _element_packer(p.packer)

    def pack_vla(v: Any, kw: Any) -> bytes:
        if not v:
            return b""
        if len(v) != kw[length_field]:
            raise _VSE(f"Variable length error, got: {len(v)} expected: {kw[length_field]}")
        if u8:
            return b"".join(v) if isinstance(v, list) else bytes(v)
        return b"".join([ef(e) for e in v])

    return pack_vla


# -- source generation --------------------------------------------------------


class _Source:
    """Text and namespace of one generated function."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {"_VSE": _VSE, "_tn": tuple.__new__, "_suf": struct.unpack_from}
        self.lines: list[str] = []
        self._n = itertools.count()

    def ref(self, obj: Any, hint: str = "c") -> str:
        name = f"_{hint}{next(self._n)}"
        self.ns[name] = obj
        return name

    def var(self, hint: str) -> str:
        return f"{hint}{next(self._n)}"

    def emit(self, line: str, indent: int = 1) -> None:
        self.lines.append("    " * indent + line)

    def build(self, fname: str, label: str) -> Callable:
        src = "\n".join(self.lines)
        exec(compile(src, f"<vppagent.codec {label}>", "exec"), self.ns)
        fn = self.ns[fname]
        fn.__vppagent_source__ = src  # for debugging a mismatch
        return fn


class _PackGen(_Source):
    """Emits the body of a struct packer: statements + one concatenation."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.fmt: list[str] = []
        self.vals: list[str] = []

    def slot(self, fmt: str, expr: str) -> None:
        self.fmt.append(fmt)
        self.vals.append(expr)

    def chunk(self, expr: str) -> None:
        self._flush()
        v = self.var("c")
        self.emit(f"{v} = {expr}")
        self.parts.append(v)

    def _flush(self) -> None:
        if self.fmt:
            s = struct.Struct(">" + "".join(self.fmt))
            self.parts.append(f"{self.ref(s.pack, 'S')}({', '.join(self.vals)})")
            self.fmt, self.vals = [], []

    def result(self) -> str:
        self._flush()
        return " + ".join(self.parts) if self.parts else 'b""'

    def or_default(self, src: str, dflt: Any) -> str:
        if dflt is None:  # vpp_papi would pack None itself (and fail in struct)
            return src
        lit = _literal(dflt)
        if lit is None:
            lit = self.ref(dflt, "D")
        return f"(x if (x := {src}) is not None else {lit})"

    def fields(self, t: Any, dv: str) -> None:
        for name, p in zip(t.fields, t.packers):
            self.value(p, f"{dv}.get({name!r})", dv)

    def struct_value(self, t: Any, src: str, norm: Callable[[Any], dict]) -> None:
        dv = self.var("d")
        self.emit(f"{dv} = {src}")
        self.emit(f"if type({dv}) is not dict: {dv} = {self.ref(norm, 'N')}({dv})")
        self.fields(t, dv)

    def delegate(self, p: Any, src: str, kw: str) -> None:
        """Let vpp_papi's own packer object do this field, with its own kwargs."""
        expr = f"{self.ref(p, 'P')}.pack({src}, {kw})"
        size = _pack_size(p)
        if size is None:
            self.chunk(expr)
        else:
            self.slot(f"{size}s", expr)

    def value(self, p: Any, src: str, kw: str) -> None:
        """Pack p's value, read by expression src; kw is the enclosing level's dict
        (vpp_papi's kwargs for every non-struct member)."""
        if type(p) is _vs.BaseTypes:
            if p._type == "f64":
                self.slot("8s", f"{self.ref(_F64.pack, 'F')}({self.or_default(src, _default(p))})")
            elif p._type in _BASE_FMT:
                self.slot(_BASE_FMT[p._type], self.or_default(src, _default(p)))
            else:
                raise _Unsupported(f"base type {p._type}")
        elif isinstance(p, _vs.VPPEnumType):
            # Packed by the global enumtype packer, which has no options.
            self.slot(_code(p.enumtype), self.or_default(src, _default(p)))
        elif isinstance(p, _vs.VPPTypeAlias):
            self.alias(p, src, kw)
        elif isinstance(p, _vs.VPPUnionType):
            size = _pack_size(p)
            if size is None:
                self.delegate(p, src, kw)
            else:
                self.slot(f"{size}s", f"{self.ref(_union_packer(p), 'U')}({src}, {kw})")
        elif isinstance(p, _vs.VPPType):
            size = _pack_size(p)
            if size is not None and _pack_conversions(p.name):
                self.slot(f"{size}s", f"{self.ref(_converted_leaf(p), 'K')}({src})")
            else:
                # vpp_papi passes a nested struct its own value as kwargs, so
                # flattening it keeps the count-field lookups of VLAs inside it.
                self.struct_value(p, src, _struct_normalizer(p))
        elif isinstance(p, _vs.FixedList_u8):
            self.u8_array(p, src)
        elif isinstance(p, _vs.String):
            if p.fixed:
                self.slot(f"{p.limit}s", f"{self.ref(_fixed_string(p), 'T')}({src})")
            else:
                self.chunk(f"{self.ref(_variable_string(p), 'T')}({src})")
        elif isinstance(p, _vs.FixedList):
            e = p.packer
            scalar = (type(e) is _vs.BaseTypes and e._type in _BASE_FMT) or isinstance(e, _vs.VPPEnumType)
            if scalar:
                code = _code(e._type if type(e) is _vs.BaseTypes else e.enumtype)
                self.slot(f"{p.num}{code}", f"*{self.ref(_fixed_scalar_list(p), 'L')}({src})")
            else:
                size = _pack_size(p)
                expr = f"{self.ref(_fixed_list_packer(p), 'L')}({src})"
                if size is None:
                    self.chunk(expr)
                else:
                    self.slot(f"{size}s", expr)
        elif isinstance(p, _vs.VLAList):
            self.chunk(f"{self.ref(_vla_packer(p), 'V')}({src}, {kw})")
        else:
            self.delegate(p, src, kw)

    def u8_array(self, p: Any, src: str) -> None:
        n = _pack_size(p)
        norm = self.ref(_u8_array_normalizer(p), "N")
        self.slot(f"{n}s", f"(x if type(x := {src}) is bytes and len(x) <= {n} else {norm}(x))")

    def alias(self, p: Any, src: str, kw: str) -> None:
        inner = p.packer
        convs = _pack_conversions(p.name)
        if isinstance(inner, _vs.FixedList_u8):
            self.u8_array(p, src)
        elif type(inner) is _vs.BaseTypes and not convs and inner._type in _BASE_FMT:
            dflt = _default(p)
            if dflt is None:  # falls through to the base type's own default
                dflt = _default(inner)
            self.slot(_BASE_FMT[inner._type], self.or_default(src, dflt))
        elif (isinstance(inner, _vs.VPPType) and not isinstance(inner, _vs.VPPUnionType)
              and not _has_vla(inner)):
            # An alias hands the struct the *enclosing* kwargs; harmless
            # without a VLA below, which is why that case is delegated.
            size = _pack_size(inner)
            if size is not None and (convs or _pack_conversions(inner.name)):
                self.slot(f"{size}s", f"{self.ref(_converted_leaf(p), 'K')}({src})")
            else:
                norm = _alias_struct_normalizer(p, _struct_normalizer(inner))
                self.struct_value(inner, src, norm)
        else:
            self.delegate(p, src, kw)


_struct_cache: dict[tuple[int, bool], tuple[Any, Callable[[Any], bytes]]] = {}


def _compile_struct_packer(t: Any, top: bool) -> Callable[[Any], bytes]:
    """Source for one struct (a message when top): its nested structs are
    flattened into it, arrays of structs call their own compiled packers."""
    hit = _struct_cache.get((id(t), top))
    if hit is not None:
        return hit[1]
    g = _PackGen()
    norm = g.ref(_struct_normalizer(t), "N")
    g.emit("def pack(d):", 0)
    body_start = len(g.lines)
    g.emit(f"if type(d) is not dict: d = {norm}(d)")
    g.fields(t, "d")
    g.emit(f"return {g.result()}")
    if top:
        # vpp_papi reports every failure below a message as
        # VPPSerializerValueError; so do we (try costs nothing in 3.11).
        g.lines[body_start:] = ["    " + line for line in g.lines[body_start:]]
        g.lines.insert(body_start, "    try:")
        g.emit("except _VSE:", 1)
        g.emit("raise", 2)
        g.emit("except Exception as e:", 1)
        g.emit(f"raise _VSE('Exception while packing ' + repr(d)[:200] + ' for {t.name}') from e", 2)
    fn = g.build("pack", f"pack {t.name}")
    _struct_cache[(id(t), top)] = (t, fn)
    return fn


_converted_cache: dict[int, tuple[Any, Callable[[Any], bytes]]] = {}


def _converted_leaf(p: Any) -> Callable[[Any], bytes]:
    """Packer of a fixed struct with conversions (or an alias of one)."""
    hit = _converted_cache.get(id(p))
    if hit is not None:
        return hit[1]
    if isinstance(p, _vs.VPPTypeAlias):
        inner = p.packer
        norm = _alias_struct_normalizer(p, _struct_normalizer(inner))
        struct_pack = _compile_struct_packer(inner, top=False)

        def pack(v: Any) -> bytes:
            return struct_pack(norm(v))
    else:
        pack = _compile_struct_packer(p, top=False)
    fn = _converted_struct_packer(pack)
    _converted_cache[id(p)] = (p, fn)
    return fn


def compile_packer(msg: Any) -> Packer | None:
    """A function packing ``msg`` exactly as ``msg.pack(d)`` does, or None.

    ``msg`` is a vpp_papi VPPMessage. The function raises
    VPPSerializerValueError for the inputs vpp_papi rejects.
    """
    if not isinstance(msg, _vs.VPPType) or isinstance(msg, _vs.VPPUnionType):
        return None
    try:
        return _compile_struct_packer(msg, top=True)
    except _Unsupported as e:
        log.debug("codec: %s packed by vpp_papi: %s", getattr(msg, "name", msg), e)
        return None


# -- unpacking ----------------------------------------------------------------


class _EnumCache(dict):
    """value -> enum member, filled from the enum class on first sight.

    vpp_papi calls the IntFlag class per value, which costs more than the
    whole struct unpack; the members it returns are the same objects.
    """

    __slots__ = ("_enum",)

    def __init__(self, enum: Any) -> None:
        super().__init__()
        self._enum = enum

    def __missing__(self, key: int) -> Any:
        member = self._enum(key)
        if len(self) < 4096:  # flag combinations of a u32 are unbounded
            self[key] = member
        return member


_enum_caches: dict[int, tuple[Any, _EnumCache]] = {}


def _enum_cache(p: Any) -> _EnumCache:
    hit = _enum_caches.get(id(p))
    if hit is None:
        hit = (p, _EnumCache(p.enum))
        _enum_caches[id(p)] = hit
    return hit[1]


class _UnpackGen(_Source):
    """Emits statements that unpack runs of fixed fields with one struct each.

    A run ("segment") is closed, and its struct emitted, only when a variable
    part (VLA, variable string, array loop) needs a runtime offset; value
    expressions built before that refer to the segment's locals and are
    evaluated in the final return.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fmt: list[str] = []
        self.vars: list[str] = []

    def slot(self, fmt: str) -> str:
        v = self.var("v")
        self.fmt.append(fmt)
        self.vars.append(v)
        return v

    def close(self) -> bool:
        """Emit the pending segment's unpack; True if there was one."""
        if not self.fmt:
            return False
        s = struct.Struct(">" + "".join(self.fmt))
        self.emit(f"({', '.join(self.vars)},) = {self.ref(s.unpack_from, 'S')}(b, off)")
        self.emit(f"off += {s.size}")
        self.fmt, self.vars = [], []
        return True

    def value(self, p: Any, ntc: bool, results: list[str] | None) -> str:
        """Expression for p's value; ntc is vpp_papi's "no type conversion"
        flag (set below a type that converts as a whole)."""
        if type(p) is _vs.BaseTypes:
            if p._elements:
                raise _Unsupported("bare sized base type")
            if p._type == "f64":
                return f"{self.ref(_F64.unpack, 'F')}({self.slot('8s')})[0]"
            if p._type not in _BASE_FMT:
                raise _Unsupported(f"base type {p._type}")
            return self.slot(_BASE_FMT[p._type])
        if isinstance(p, _vs.VPPEnumType):
            return f"{self.ref(_enum_cache(p), 'E')}[{self.slot(_code(p.enumtype))}]"
        if isinstance(p, _vs.VPPTypeAlias):
            conv = None if ntc else _unpack_conversion(p.name)
            inner = self.value(p.packer, True if conv else ntc, results)
            return f"{self.ref(conv, 'C')}({inner})" if conv else inner
        if isinstance(p, _vs.FixedList_u8):
            return self.slot(f"{p.num}s")
        if isinstance(p, _vs.String):
            if p.fixed:
                return f"{self.slot(f'{p.num}s')}.split(b'\\x00', 1)[0].decode('ascii')"
            return self.variable_string()
        if isinstance(p, _vs.VPPUnionType):
            return self.union(p, ntc)
        if isinstance(p, _vs.VPPType):
            conv = None if ntc else _unpack_conversion(p.name)
            inner_ntc = True if conv else ntc
            exprs: list[str] = []
            for c in p.packers:
                exprs.append(self.value(c, inner_ntc, exprs))
            t = f"_tn({self.ref(p.tuple, 'T')}, ({', '.join(exprs)},))"
            return f"{self.ref(conv, 'C')}({t})" if conv else t
        if isinstance(p, _vs.FixedList):
            e = p.packer
            if _unpack_size(e) is not None and p.num * _leaves(e) <= 256:
                return f"[{', '.join(self.value(e, ntc, None) for _ in range(p.num))}]"
            return self.loop(e, ntc, str(p.num))
        if isinstance(p, _vs.VLAList):
            return self.vla(p, ntc, results)
        raise _Unsupported(type(p).__name__)

    def variable_string(self) -> str:
        self.close()
        n, s = self.var("n"), self.var("s")
        self.emit(f"({n},) = {self.ref(_U32.unpack_from, 'S')}(b, off)")
        # vpp_papi reports size 0 for an empty string, not 4: do the same.
        self.emit(f"if {n} == 0: {s} = ''")
        self.emit("else:")
        self.emit(f"({s},) = _suf('>%ds' % {n}, b, off + 4)", 2)
        self.emit(f"{s} = {s}.decode('ascii', errors='replace')", 2)
        self.emit(f"off += 4 + {n}", 2)
        return s

    def union(self, p: Any, ntc: bool) -> str:
        size = _unpack_size(p)
        if size is None:
            raise _Unsupported("variable-size union")
        raw = self.slot(f"{size}s")
        members = []
        for m in p.packers.values():
            if _is_u8_array(m):
                n = _unpack_size(m)
                e = raw if n == size else f"{raw}[:{n}]"
                conv = None if ntc or not isinstance(m, _vs.VPPTypeAlias) else _unpack_conversion(m.name)
                members.append(f"{self.ref(conv, 'C')}({e})" if conv else e)
            else:
                # Every member reads the same bytes: decode each from the slot.
                f = self.ref(_sub_unpacker(m, ntc), "M")
                members.append(f"{f}({raw}, 0)[0]")
        return f"_tn({self.ref(p.tuple, 'T')}, ({', '.join(members)},))"

    def loop(self, e: Any, ntc: bool, count: str) -> str:
        self.close()
        lst = self.var("l")
        f = self.ref(_sub_unpacker(e, ntc), "M")
        self.emit(f"{lst} = []")
        self.emit(f"for _ in range({count}):")
        self.emit(f"x, sz = {f}(b, off)", 2)
        self.emit(f"{lst}.append(x)", 2)
        self.emit("off += sz", 2)
        return lst

    def vla(self, p: Any, ntc: bool, results: list[str] | None) -> str:
        if results is None or p.index >= len(results):
            raise _Unsupported("VLA without its count field")
        self.close()
        n = self.var("n")
        self.emit(f"{n} = {results[p.index]}")
        results[p.index] = n  # the count field's value is evaluated once
        e = p.packer
        lst = self.var("l")
        if e.size == 1 and p.field_type == "u8":
            self.emit(f"if {n} == 0: {lst} = b''")
            self.emit("else:")
            self.emit(f"({lst},) = _suf('>%ds' % {n}, b, off)", 2)
            self.emit(f"off += {n}", 2)
            return lst
        scalar = (type(e) is _vs.BaseTypes and e._type in _BASE_FMT) or isinstance(e, _vs.VPPEnumType)
        if scalar:
            code = _code(e._type if type(e) is _vs.BaseTypes else e.enumtype)
            size = struct.calcsize(">" + code)
            self.emit(f"if {n} > 0:")
            raw = f"_suf('>%d{code}' % {n}, b, off)"
            if isinstance(e, _vs.VPPEnumType):
                self.emit(f"{lst} = [{self.ref(_enum_cache(e), 'E')}[x] for x in {raw}]", 2)
            else:
                self.emit(f"{lst} = list({raw})", 2)
            self.emit(f"off += {n} * {size}", 2)
            self.emit(f"else: {lst} = []")
            return lst
        return self.loop(e, ntc, n)


_unpack_cache: dict[tuple[int, bool], tuple[Any, Callable[[bytes, int], tuple[Any, int]]]] = {}


def _sub_unpacker(p: Any, ntc: bool) -> Callable[[bytes, int], tuple[Any, int]]:
    """(buffer, offset) -> (value, size), as vpp_papi's p.unpack(..., ntc=ntc)."""
    hit = _unpack_cache.get((id(p), ntc))
    if hit is not None:
        return hit[1]
    g = _UnpackGen()
    g.emit("def unpack(b, off):", 0)
    g.emit("o0 = off")
    e = g.value(p, ntc, None)
    g.close()
    g.emit(f"return {e}, off - o0")
    fn = g.build("unpack", f"unpack {getattr(p, 'name', type(p).__name__)}")
    _unpack_cache[(id(p), ntc)] = (p, fn)
    return fn


def compile_unpacker(msg: Any) -> Unpacker | None:
    """A function returning what ``msg.unpack(b)[0]`` returns, or None."""
    if not isinstance(msg, _vs.VPPType) or isinstance(msg, _vs.VPPUnionType):
        return None
    try:
        g = _UnpackGen()
        g.emit("def unpack(b):", 0)
        g.emit("off = 0")
        e = g.value(msg, False, None)
        if g.close():
            g.lines.pop()  # its "off += size" is dead: nothing is read after it
        g.emit(f"return {e}")
        return g.build("unpack", f"unpack {msg.name}")
    except _Unsupported as e:
        log.debug("codec: %s unpacked by vpp_papi: %s", msg.name, e)
        return None


# -- the cache the client uses ------------------------------------------------


class Codec:
    """Packers and unpackers by message name, compiled on first use.

    ``messages`` maps names to vpp_papi VPPMessage objects (what
    ``VPPApiJSONFiles.load_api`` returns). Messages the compiler does not
    handle get thin wrappers around vpp_papi, so callers never branch.
    """

    def __init__(self, messages: Mapping[str, Any]) -> None:
        found = _vpp_papi_version()
        if found is not None and found != CHECKED_VPP_PAPI:
            log.warning("codec: built against vpp_papi %s, running with %s; run "
                        "tests/unit/test_codec.py before trusting the compiled codec",
                        CHECKED_VPP_PAPI, found)
        self._messages = messages
        self._packers: dict[str, tuple[Packer, bool]] = {}
        self._unpackers: dict[str, tuple[Unpacker, bool]] = {}

    def _message(self, name: str) -> Any:
        try:
            return self._messages[name]
        except KeyError:
            raise ApiDefinitionsError(f"message {name!r} is not in the API definitions") from None

    def _packer_entry(self, name: str) -> tuple[Packer, bool]:
        hit = self._packers.get(name)
        if hit is None:
            msg = self._message(name)
            fn = _safe_compile(compile_packer, msg, "pack")
            hit = (fn, True) if fn is not None else (msg.pack, False)
            self._packers[name] = hit
        return hit

    def _unpacker_entry(self, name: str) -> tuple[Unpacker, bool]:
        hit = self._unpackers.get(name)
        if hit is None:
            msg = self._message(name)
            fn = _safe_compile(compile_unpacker, msg, "unpack")
            if fn is None:
                def fn(b: bytes, msg: Any = msg) -> tuple:
                    return msg.unpack(b)[0]
                hit = (fn, False)
            else:
                hit = (fn, True)
            self._unpackers[name] = hit
        return hit

    def packer(self, name: str) -> Packer:
        """dict -> bytes for message ``name``, header fields included."""
        return self._packer_entry(name)[0]

    def unpacker(self, name: str) -> Unpacker:
        """bytes -> the namedtuple vpp_papi would return for message ``name``."""
        return self._unpacker_entry(name)[0]

    def is_compiled(self, name: str, direction: Direction = "both") -> bool:
        """Whether ``name`` is served by compiled code (not vpp_papi) that way."""
        if direction == "pack":
            return self._packer_entry(name)[1]
        if direction == "unpack":
            return self._unpacker_entry(name)[1]
        return self._packer_entry(name)[1] and self._unpacker_entry(name)[1]


def _safe_compile(compiler: Callable[[Any], Any], msg: Any, what: str) -> Any:
    # A compiler bug must cost speed, not the agent: vpp_papi still works.
    try:
        return compiler(msg)
    except Exception:
        log.warning("codec: cannot compile %s of %s; using vpp_papi", what, msg.name, exc_info=True)
        return None
