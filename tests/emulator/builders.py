"""Request builders and dump readers for the emulator tests."""
from __future__ import annotations

from vpp_papi import VPPApiClient

NO_INDEX = 0xFFFFFFFF


def fib_path(sw_if_index: int = NO_INDEX, nh: str | None = None, *, proto: int = 0,
             table_id: int = 0, type: int = 0, weight: int = 1, preference: int = 0) -> dict:
    address = {} if nh is None else {"ip6" if ":" in nh else "ip4": nh}
    return {"sw_if_index": sw_if_index, "table_id": table_id, "rpf_id": 0, "weight": weight,
            "preference": preference, "type": type, "flags": 0, "proto": proto,
            "nh": {"address": address}, "n_labels": 0, "label_stack": [{}] * 16}


def route(prefix: str, paths: list[dict], table_id: int = 0) -> dict:
    return {"table_id": table_id, "prefix": prefix, "n_paths": len(paths), "paths": paths}


def routes_of(client: VPPApiClient, table_id: int = 0, ip6: bool = False) -> dict[str, list]:
    """prefix -> paths of a route dump."""
    dump = client.api.ip_route_dump(table={"table_id": table_id, "is_ip6": ip6})
    return {str(d.route.prefix): list(d.route.paths) for d in dump}
