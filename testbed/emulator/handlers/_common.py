"""Small helpers shared by the handler families (not a family itself)."""
from __future__ import annotations

from typing import Any

NO_INDEX = 0xFFFFFFFF  # VPP's ~0
ZERO_MAC = bytes(6)


def mac_bytes(mac: Any) -> bytes:
    """The 6 bytes of a decoded vl_api_mac_address_t (vpp_papi's MACAddress)."""
    return bytes(getattr(mac, "packed", mac))


def af_of(is_ip6: Any) -> int:
    return 6 if is_ip6 else 4
