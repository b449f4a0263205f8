"""The IP types every layer names, and VPP's ``~0``: defined once.

``IpAddress``/``IpNetwork``/``IpInterface`` are either family's address,
prefix and address-with-prefix. ``U32_NONE`` is VPP's ``~0`` (0xFFFFFFFF),
which its API uses for "no interface", "every interface" in dump filters and
"allocate one for me"; each vpp family names it for the meaning it has there.

Must not touch: anything; this module imports only the standard library.
"""
from __future__ import annotations

import ipaddress

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
U32_NONE = 0xFFFFFFFF

__all__ = ["IpAddress", "IpInterface", "IpNetwork", "U32_NONE"]
