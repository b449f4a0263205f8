"""Fast request decoding: vpp_papi's ``unpack``, compiled once per message.

vpp_papi walks its serializer objects field by field; a route with one path
costs about ninety small unpack calls, most of them for the 16-entry MPLS
label stack every path carries. This module compiles each message into a
few ``struct.unpack_from`` calls (runs of scalar fields, and fixed arrays of
scalar-only structures, become one call each) that build the same
namedtuples, enums and converted values (addresses, prefixes, MACs) as
vpp_papi does.

Contract: a decoder returns exactly what vpp_papi's ``unpack`` returns, and
raises where it raises; a fuzz test compares both on every message. Anything
not supported at compile time keeps vpp_papi's own decoder.

Why not fall back to vpp_papi on errors: its ``unpack`` keeps a per-type
"top-level conversion" flag in process-global objects; an unpack that fails
half-way leaves the flag set and makes later unpacks of that type (by any
client in the process) go wrong. ``reset_conversion_flags`` repairs that.
"""
from __future__ import annotations

import struct
from typing import Any, Callable

from vpp_papi import vpp_format
from vpp_papi.vpp_serializer import (
    BaseTypes,
    FixedList,
    FixedList_u8,
    String,
    VLAList,
    VLAList_legacy,
    VPPEnumType,
    VPPType,
    VPPTypeAlias,
    VPPUnionType,
    types,
)

# (data, offset, values decoded so far at this level) -> (value, size)
Decoder = Callable[[bytes, int, list], tuple[Any, int]]

_CONVERT = vpp_format.conversion_unpacker_table


def _scalar(p: Any) -> tuple[str, Any] | None:
    """(struct format without byte order, post-conversion) of a fusable scalar."""
    if isinstance(p, VPPEnumType):
        fmt = types[p.enumtype].packer.format
        return fmt.lstrip(">"), p.enum
    if isinstance(p, BaseTypes):
        fmt = p.packer.format
        if fmt.startswith(">") and not fmt.endswith("s"):
            return fmt[1:], None
        return None
    if isinstance(p, VPPTypeAlias) and p.name not in _CONVERT:
        return _scalar(p.packer)
    return None


def _flat_struct(p: Any, ntc: bool) -> tuple[str, list] | None:
    """Format and per-value conversions of a struct made only of scalars."""
    if type(p) is not VPPType or (not ntc and p.name in _CONVERT):
        return None
    fmt, convs = "", []
    for child in p.packers:
        s = _scalar(child)
        if s is None:
            return None
        fmt += s[0]
        convs.append(s[1])
    return fmt, convs


def compile_decoder(p: Any, ntc: bool = False) -> Decoder:
    """A decoder for one serializer object, as its ``unpack(..., ntc=ntc)``."""
    if isinstance(p, VPPEnumType):
        base, enum = types[p.enumtype].packer, p.enum
        size = base.size

        def dec_enum(data, off, res):
            return enum(base.unpack_from(data, off)[0]), size
        return dec_enum
    if isinstance(p, BaseTypes):
        s = p.packer
        size = s.size

        def dec_base(data, off, res):
            return s.unpack_from(data, off)[0], size
        return dec_base
    if isinstance(p, FixedList_u8):
        return _fixed_bytes(p.num)
    if isinstance(p, String):
        return _string(p)
    if isinstance(p, FixedList):
        return _fixed_list(p, ntc)
    if isinstance(p, VLAList):
        return _vla(p, ntc)
    if isinstance(p, VLAList_legacy):
        return _legacy(p, ntc)
    if isinstance(p, VPPUnionType):
        return _union(p, ntc)
    if isinstance(p, VPPTypeAlias):
        return _alias(p, ntc)
    if isinstance(p, VPPType):
        return _struct(p, ntc)
    unpack = p.unpack

    def dec_other(data, off, res):  # anything new in vpp_papi: its own code
        return unpack(data, off, res, ntc=ntc)
    return dec_other


def _fixed_bytes(num: int) -> Decoder:
    s = struct.Struct(f">{num}s")

    def dec(data, off, res):
        if len(data) - off < num:
            raise ValueError("short fixed array")
        return s.unpack_from(data, off)[0], num
    return dec


def _string(p: String) -> Decoder:
    if p.fixed:
        s = struct.Struct(f">{p.num}s")
        num = p.num

        def dec_fixed(data, off, res):
            raw = s.unpack_from(data, off)[0]
            return raw.split(b"\0", 1)[0].decode("ascii"), num
        return dec_fixed
    u32 = struct.Struct(">I")

    def dec_vla(data, off, res):
        length = u32.unpack_from(data, off)[0]
        if length == 0:
            return "", 0  # vpp_papi counts no bytes for an empty string
        raw = struct.unpack_from(f">{length}s", data, off + 4)[0]
        return raw.decode("ascii", errors="replace"), length + 4
    return dec_vla


def _fixed_list(p: FixedList, ntc: bool) -> Decoder:
    num = p.num
    flat = _flat_struct(p.packer, ntc)
    if flat is not None and all(c is None for c in flat[1]):
        fmt, convs = flat
        per = len(convs)
        s = struct.Struct(">" + fmt * num)
        make = p.packer.tuple._make
        size = s.size

        def dec_flat(data, off, res):
            vals = s.unpack_from(data, off)
            return [make(vals[i:i + per]) for i in range(0, per * num, per)], size
        return dec_flat
    elem = compile_decoder(p.packer, ntc)

    def dec(data, off, res):
        out, total = [], 0
        for _ in range(num):
            x, size = elem(data, off, out)
            out.append(x)
            off += size
            total += size
        return out, total
    return dec


def _vla(p: VLAList, ntc: bool) -> Decoder:
    index = p.index
    if p.packer.size == 1 and p.field_type == "u8":
        def dec_bytes(data, off, res):
            count = res[index]
            if count == 0:
                return b"", 0
            return struct.unpack_from(f">{count}s", data, off)[0], count
        return dec_bytes
    elem = compile_decoder(p.packer, ntc)

    def dec(data, off, res):
        out, total = [], 0
        for _ in range(res[index]):
            x, size = elem(data, off, out)
            out.append(x)
            off += size
            total += size
        return out, total
    return dec


def _legacy(p: VLAList_legacy, ntc: bool) -> Decoder:
    elem = compile_decoder(p.packer, ntc)
    step = p.packer.size

    def dec(data, off, res):
        if (len(data) - off) % step:
            raise ValueError("legacy array length mismatch")
        out, total = [], 0
        for _ in range((len(data) - off) // step):
            x, size = elem(data, off, out)
            out.append(x)
            off += step
            total += size
        return out, total
    return dec


def _union(p: VPPUnionType, ntc: bool) -> Decoder:
    members = [compile_decoder(m, ntc) for m in p.packers.values()]
    make = p.tuple._make

    def dec(data, off, res):
        vals, biggest = [], 0
        for m in members:
            x, size = m(data, off, vals)
            vals.append(x)
            if size > biggest:
                biggest = size
        return make(vals), biggest
    return dec


def _alias(p: VPPTypeAlias, ntc: bool) -> Decoder:
    convert = None if ntc else _CONVERT.get(p.name)
    inner = compile_decoder(p.packer, ntc or convert is not None)
    if convert is None:
        return inner

    def dec(data, off, res):
        x, size = inner(data, off, res)
        return convert(x), size
    return dec


def _struct(p: VPPType, ntc: bool) -> Decoder:
    convert = None if ntc else _CONVERT.get(p.name)
    child_ntc = ntc or convert is not None
    # ("run", (Struct, conversions or None)) for scalar runs, ("one", decoder) else.
    steps: list[tuple[str, Any]] = []
    run_fmt, run_convs = "", []

    def close_run() -> None:
        nonlocal run_fmt, run_convs
        if run_fmt:
            convs = run_convs if any(c is not None for c in run_convs) else None
            steps.append(("run", (struct.Struct(">" + run_fmt), convs)))
        run_fmt, run_convs = "", []

    for child in p.packers:
        s = _scalar(child)
        if s is not None:
            run_fmt += s[0]
            run_convs.append(s[1])
        else:
            close_run()
            steps.append(("one", compile_decoder(child, child_ntc)))
    close_run()
    make = p.tuple._make

    def dec(data, off, res):
        vals: list = []
        total = 0
        for kind, arg in steps:
            if kind == "run":
                s, convs = arg
                got = s.unpack_from(data, off)
                vals.extend(got if convs is None else
                            [c(v) if c is not None else v for c, v in zip(convs, got)])
                off += s.size
                total += s.size
            else:
                x, size = arg(data, off, vals)
                if type(x) is tuple and len(x) == 1:
                    x = x[0]
                vals.append(x)
                off += size
                total += size
        t = make(vals)
        if convert is not None:
            t = convert(t)
        return t, total
    return dec


def reset_conversion_flags() -> None:
    """Clear the conversion flags a failed vpp_papi unpack leaves behind."""
    for t in list(types.values()):
        # vars(), not getattr(): enum packers answer unknown attributes with KeyError.
        if vars(t).get("toplevelconversion"):
            t.toplevelconversion = False


class MessageDecoder:
    """Decode one message as vpp_papi would (compiled; vpp_papi if it cannot be)."""

    def __init__(self, codec: VPPType):
        self._codec = codec
        try:
            self._fast: Decoder | None = compile_decoder(codec)
        except Exception:
            self._fast = None

    def __call__(self, data: bytes) -> Any:
        if self._fast is not None:
            return self._fast(data, 0, [])[0]
        try:
            return self._codec.unpack(data)[0]
        except Exception:
            reset_conversion_flags()
            raise
