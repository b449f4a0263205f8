"""CRCs of the messages of our own VPP plugins, pinned from vppagent/vpp/plugin_api/.

Kept apart from ``crcs.py`` (which ``python -m vppagent.vpp.catalog``
regenerates from VPP's definitions): these messages are optional at connect.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import VppClient

# Our own plugin (vpp_plugins/kpol), pinned from vppagent/vpp/plugin_api/kpol.api.json.
# Optional: not checked at connect (stock VPP lacks it; the agent then falls
# back to the ACL plugin); ``kpol.available`` checks them instead.
OPTIONAL_CRCS: dict[str, str] = {
    "kpol_counters_details": "0xe5ca6cf6",
    "kpol_counters_dump": "0xad833868",
    "kpol_flow_stats": "0x51077d14",
    "kpol_flow_stats_reply": "0x45795132",
    "kpol_interface_attach": "0x95e09c81",
    "kpol_interface_attach_reply": "0xe8d4e804",
    "kpol_interface_details": "0x66e2bc86",
    "kpol_interface_dump": "0x51077d14",
    "kpol_ipset_add": "0xd414a113",
    "kpol_ipset_add_reply": "0xe8d4e804",
    "kpol_ipset_del": "0xceacdbcb",
    "kpol_ipset_del_reply": "0xe8d4e804",
    "kpol_ipset_details": "0x06d98e27",
    "kpol_ipset_dump": "0xceacdbcb",
    "kpol_ipset_members_add_del": "0x40b5295b",
    "kpol_ipset_members_add_del_reply": "0x2d1071c3",
    "kpol_policy_del": "0xad833868",
    "kpol_policy_del_reply": "0xe8d4e804",
    "kpol_policy_details": "0xb0c710e7",
    "kpol_policy_dump": "0xad833868",
    "kpol_policy_set": "0x2a0a0f4c",
    "kpol_policy_set_reply": "0xe8d4e804",
    # Our own plugin vpp_plugins/ksvc, pinned from plugin_api/ksvc.api.json; optional
    # likewise (``ksvc.available`` checks them).
    "ksvc_enable_disable": "0xae6cfcfb",
    "ksvc_enable_disable_reply": "0xe8d4e804",
    "ksvc_interface_details": "0x0b45011c",
    "ksvc_interface_dump": "0x51077d14",
    "ksvc_service_del": "0xa8609eaf",
    "ksvc_service_del_reply": "0xe8d4e804",
    "ksvc_service_details": "0xb0e83ed1",
    "ksvc_service_dump": "0x51077d14",
    "ksvc_service_update": "0xd9425438",
    "ksvc_service_update_reply": "0x2d1071c3",
    "ksvc_stats": "0x51077d14",
    "ksvc_stats_reply": "0x5b5fa7ca",
}


def offers(vpp: "VppClient", names: "Iterable[str]") -> bool:
    """Whether the connected VPP offers every message of ``names`` with its pinned CRC."""
    for name in names:
        m = vpp.defs.messages.get(name)
        if m is None or OPTIONAL_CRCS.get(name) != m.crc or not vpp.has_message(name):
            return False
    return True
