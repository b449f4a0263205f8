"""The emulator's compiled decoder gives exactly what vpp_papi's unpack gives."""
from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vppagent.emulator.fastcodec import MessageDecoder, compile_decoder, reset_conversion_flags


def _reference(codec, data):
    try:
        return codec.unpack(data)
    except Exception:
        reset_conversion_flags()  # vpp_papi's global state, left dirty by the failure
        return None


def _fast(codec, data):
    try:
        return compile_decoder(codec)(data, 0, [])
    except Exception:
        return None


def test_every_message_decodes_like_vpp_papi(definitions):
    rng = random.Random(20260)
    compared = 0
    for mdef in definitions.by_id[1:]:
        codec = mdef.codec
        samples = [mdef.id.to_bytes(2, "big") + bytes(max(codec.size - 2, 0))]
        for _ in range(6):
            size = rng.choice([codec.size, codec.size + rng.randint(1, 200), rng.randint(0, 40)])
            samples.append(rng.randbytes(size))
        for data in samples:
            ref, got = _reference(codec, data), _fast(codec, data)
            assert (ref is None) == (got is None), (mdef.name, data.hex())
            if ref is not None:
                assert got == ref, mdef.name
                compared += 1
        # The public wrapper: same value, or vpp_papi's own error.
        for data in samples[:3]:
            ref = _reference(codec, data)
            if ref is not None:
                assert MessageDecoder(codec)(data) == ref[0]
            else:
                with pytest.raises(Exception):
                    MessageDecoder(codec)(data)
    assert compared > len(definitions.by_id)


addresses = st.one_of(
    st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
    st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address),
)


@st.composite
def route_requests(draw):
    addr = draw(addresses)
    plen = draw(st.integers(0, addr.max_prefixlen))
    n = draw(st.integers(0, 3))
    paths = [{
        "sw_if_index": draw(st.integers(0, 2**32 - 1)),
        "table_id": draw(st.integers(0, 2**32 - 1)),
        "weight": draw(st.integers(0, 255)),
        "type": draw(st.integers(0, 10)),
        "proto": draw(st.integers(0, 4)),
        "nh": {"address": {"ip6": draw(addresses).packed.rjust(16, b"\0")}},
        "n_labels": draw(st.integers(0, 16)),
        "label_stack": [{"label": draw(st.integers(0, 2**20)), "ttl": 64}] * 16,
    } for _ in range(n)]
    return {"is_add": draw(st.booleans()), "is_multipath": draw(st.booleans()),
            "route": {"table_id": draw(st.integers(0, 2**32 - 1)),
                      "prefix": ipaddress.ip_network((addr, plen), strict=False),
                      "n_paths": n, "paths": paths}}


@settings(max_examples=150, deadline=None)
@given(route_requests())
def test_route_requests_decode_like_vpp_papi(definitions, fields):
    mdef = definitions.by_name["ip_route_add_del"]
    data = mdef.codec.pack(dict(fields, _vl_msg_id=mdef.id, client_index=1, context=2))
    assert MessageDecoder(mdef.codec)(data) == mdef.codec.unpack(data)[0]
