"""A comparable picture of everything VPP holds that tests may touch.

Used by the contract fixture to prove that each test leaves VPP exactly as it
found it. Fields that VPP changes by itself (ages, counters, link speed) are
left out so that the comparison only sees configuration.
"""
from __future__ import annotations

from typing import Any

from vppagent.vpp.client import VppClient

ALL = 0xFFFFFFFF

# (dump message, request fields) for every family; skipped when VPP lacks it.
DUMPS: list[tuple[str, dict]] = [
    ("sw_interface_dump", {"sw_if_index": ALL}),
    ("ip_table_dump", {}),
    ("ip_unnumbered_dump", {"sw_if_index": ALL}),
    ("af_packet_dump", {}),
    ("sw_interface_tap_v2_dump", {"sw_if_index": ALL}),
    ("memif_socket_filename_dump", {}),
    ("memif_dump", {}),
    ("proxy_arp_dump", {}),
    ("proxy_arp_intfc_dump", {}),
    ("ip6nd_proxy_dump", {}),
    ("cnat_translation_dump", {}),
    ("acl_dump", {"acl_index": ALL}),
    ("acl_interface_list_dump", {"sw_if_index": ALL}),
    ("ipip_tunnel_dump", {"sw_if_index": ALL}),
    ("vxlan_tunnel_v2_dump", {"sw_if_index": ALL}),
    ("ipsec_sa_v5_dump", {"sa_id": ALL}),
    ("ipsec_itf_dump", {"sw_if_index": ALL}),
    ("ipsec_tunnel_protect_dump", {"sw_if_index": ALL}),
    ("wireguard_interface_dump", {"show_private_key": False, "sw_if_index": ALL}),
    ("wireguard_peers_dump", {"peer_index": ALL}),
]
VOLATILE = {"link_speed", "age", "context", "_vl_msg_id", "stats_index", "seq", "seq_hi",
            "last_seq", "last_seq_hi", "replay_window", "n_sessions", "flags_session",
            "sa_sw_if_index"}


def _plain(v: Any) -> Any:
    if hasattr(v, "_fields"):
        return tuple((f, _plain(getattr(v, f))) for f in v._fields if f not in VOLATILE)
    if isinstance(v, (list, tuple)):
        return tuple(_plain(x) for x in v)
    return v if isinstance(v, (int, str, bytes, bool, float, type(None))) else str(v)


def _interface(d: Any) -> Any:
    # Link state follows the peer (a veth end) and is not configuration.
    return (d.sw_if_index, d.interface_name, d.tag, d.flags & 1, tuple(d.mtu), str(d.l2_address))


def take(vpp: VppClient) -> dict[str, Any]:
    snap: dict[str, Any] = {}
    for msg, fields in DUMPS:
        if not vpp.has_message(msg):
            continue
        try:
            details = vpp.dump(msg, **fields)
        except Exception as e:  # a dump VPP rejects is part of the picture too
            snap[msg] = f"error: {e}"
            continue
        conv = _interface if msg == "sw_interface_dump" else _plain
        snap[msg] = sorted((conv(d) for d in details), key=repr)
    for table in vpp.dump("ip_table_dump"):
        t = table.table
        routes = vpp.dump("ip_route_dump", table={"table_id": t.table_id, "is_ip6": t.is_ip6})
        snap[f"routes/{t.table_id}/{'ip6' if t.is_ip6 else 'ip4'}"] = sorted(
            (_plain(r.route) for r in routes), key=repr)
    for af in (0, 1):
        snap[f"neighbors/{af}"] = sorted(
            (_plain(n.neighbor) for n in vpp.dump("ip_neighbor_dump", sw_if_index=ALL, af=af)
             if n.neighbor.flags & 1), key=repr)
    return snap


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        if b == a:
            continue
        if isinstance(b, list) and isinstance(a, list):
            added = [x for x in a if x not in b]
            removed = [x for x in b if x not in a]
            out.append(f"{key}: added {added[:3]}, removed {removed[:3]}")
        else:
            out.append(f"{key}: {b!r} -> {a!r}")
    return out
