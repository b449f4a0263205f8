"""Whatever JSON the API server sends, conversion either succeeds or raises InvalidObject.

A source must never die on a strange object: any other exception would be a
bug that stops a whole kind from flowing.
"""
from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.fakekube import objects as k
from vppagent.model import CONVERTERS, InvalidObject, from_api

BASES = {
    "Node": k.node("n", pod_cidrs=["10.0.0.0/24"], internal_ip="10.0.0.1", labels={"a": "b"}),
    "Namespace": k.namespace("ns"),
    "Pod": k.pod("p", node="n", ips=["10.0.0.2"], ports=[{"name": "http", "containerPort": 80}]),
    "Service": k.service("s", sessionAffinity="ClientIP", externalIPs=["1.2.3.4"]),
    "EndpointSlice": k.endpointslice("e", service="s", addresses=["10.0.0.3"]),
    "NetworkPolicy": k.network_policy(
        "np", pod_selector={"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]},
        ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                  "ports": [{"port": 80, "endPort": 90}]}],
        egress=[{"to": [{"podSelector": {}, "namespaceSelector": {"matchLabels": {"x": "y"}}}]}]),
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 100000) | st.floats(allow_nan=False)
    | st.sampled_from(["", "None", "TCP", "In", "10.0.0.0/8", "::1", "http", "a" * 70]) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for key, val in obj.items():
            out += _paths(val, prefix + (key,))
    elif isinstance(obj, list):
        for i, val in enumerate(obj):
            out += _paths(val, prefix + (i,))
    return out


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(CONVERTERS)), data=st.data(), junk=json_values)
def test_conversion_never_raises_anything_but_invalid_object(kind: str, data: st.DataObject, junk: Any) -> None:
    obj = copy.deepcopy(BASES[kind])
    path = data.draw(st.sampled_from(_paths(obj)))
    cur = obj
    for part in path[:-1]:
        cur = cur[part]
    cur[path[-1]] = junk
    try:
        result = from_api(kind, obj)
    except InvalidObject as exc:
        assert exc.kind == kind and exc.field is not None
    else:
        hash(result)  # whatever was accepted is a usable, hashable value
