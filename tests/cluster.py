"""Helpers the agent-level suites share: a small cluster in the fake API server, what VPP holds
of it, which requests changed VPP."""
from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

from testbed.fakekube import FakeKube
from testbed.fakekube import objects as k
from vppagent.vpp import cnat, routes
from vppagent.vpp.client import VppClient

_CLUSTER = ipaddress.ip_network("10.244.0.0/16")


def populate(fake: FakeKube, *, nodes: int = 3, services: int = 4) -> None:
    """This node (node-1, 10.244.1.0/24), ``nodes - 1`` others, and ``services`` ClusterIP
    services with two ports each and three ready endpoints."""
    for i in range(1, nodes + 1):
        fake.add(k.node(f"node-{i}", pod_cidrs=[f"10.244.{i}.0/24"], internal_ip=f"192.168.0.{i}"))
    for i in range(services):
        add_service(fake, i)


def add_service(fake: FakeKube, i: int, endpoints: int = 3) -> None:
    fake.add(k.service(f"s{i}", cluster_ip=f"10.96.{i // 200}.{10 + i % 200}", ports=[
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
        {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 5353}]))
    fake.add(slice_for(i, endpoints))


def slice_for(i: int, endpoints: int = 3, port: int = 8080) -> dict[str, Any]:
    s = k.endpointslice(f"s{i}-a", service=f"s{i}",
                        addresses=[f"10.244.{2 + j % 2}.{(i * 7 + j) % 250 + 2}" for j in range(endpoints)],
                        port=port)
    s["ports"].append({"name": "dns", "protocol": "UDP", "port": 5353})
    return s


def vpp_picture(vpp: VppClient) -> dict[str, list]:
    """What VPP holds of the agent's kinds, comparably (ids left out)."""
    rts = sorted((str(r.prefix), tuple(sorted(str(p.next_hop) for p in r.paths)))
                 for r in routes.dump(vpp)
                 if r.prefix.subnet_of(_CLUSTER) and r.paths and all(p.type == routes.PathType.NORMAL for p in r.paths))
    trs = sorted((str(t.vip.address), t.vip.port, int(t.proto), tuple(sorted(f"{p.dst.address}:{p.dst.port}"
                                                                               for p in t.paths)))
                 for t in cnat.dump_translations(vpp))
    return {"routes": rts, "translations": trs}


# Requests that only read VPP: everything else counts as a mutating call.
READ_ONLY = frozenset({"control_ping", "show_version", "cnat_get_snat_addresses", "sw_interface_get_table",
                       "ip_route_lookup", "sockclnt_create", "sockclnt_delete"})


def mutating(calls: Counter[str], since: Counter[str] | None = None) -> dict[str, int]:
    """Mutating requests in ``calls`` (minus ``since``), by message name."""
    since = since or Counter()
    return {name: n - since.get(name, 0) for name, n in calls.items()
            if n - since.get(name, 0) and not name.endswith("_dump") and name not in READ_ONLY}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
