"""Reply shaping shared by the cnat, acl, tunnels, ipsec and wireguard families.

VPP's REPLY_MACRO2 fills a reply's fields whether the request succeeded or
not, so a failed create answers with its index field still at the ``~0``
VPP initialised it to - not the zeros a bare VppRetval would produce.
"""
from __future__ import annotations

import functools
import ipaddress
from typing import Any, Callable

from ..registry import VppRetval

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def on_failure(**fields: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Answer a VppRetval raised by the handler with ``fields`` beside the retval."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def handler(emu: Any, mp: Any) -> Any:
            try:
                return fn(emu, mp)
            except VppRetval as e:
                return {"retval": e.retval, **fields}

        return handler

    return wrap


def ip46(addr: IPAddress) -> IPAddress:
    """An address as vnet's ip46_address_t sees it.

    ip46 calls an address IPv4 when its first 96 bits are zero, so an IPv6
    address like ``::1`` is taken (and encoded back, with IP46_TYPE_ANY) as
    the IPv4 address 0.0.0.1.
    """
    if addr.version == 6 and int(addr) >> 32 == 0:
        return ipaddress.IPv4Address(int(addr))
    return addr
