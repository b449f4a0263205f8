"""Builders of plain-dict API objects for tests (what ``kubectl get -o json`` shows).

Small and explicit: each builder fills what the agent reads, and ``**extra``
merges anything else into the top level. Used with ``FakeKube.add``.
"""
from __future__ import annotations

from typing import Any


def _meta(name: str, namespace: str | None = None, labels: dict[str, str] | None = None,
          annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def node(name: str, *, pod_cidrs: list[str] | None = None, internal_ip: str | None = None,
         labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
         **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Node",
                           "metadata": _meta(name, labels=labels, annotations=annotations),
                           "spec": {"podCIDRs": list(pod_cidrs or [])}, "status": {}}
    if pod_cidrs:
        obj["spec"]["podCIDR"] = pod_cidrs[0]
    if internal_ip:
        obj["status"]["addresses"] = [{"type": "InternalIP", "address": internal_ip},
                                      {"type": "Hostname", "address": name}]
    obj.update(extra)
    return obj


def namespace(name: str, *, labels: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {"kubernetes.io/metadata.name": name, **(labels or {})}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name, labels=labels)}


def pod(name: str, namespace: str = "default", *, node: str | None = None, ips: list[str] | None = None,
        labels: dict[str, str] | None = None, ports: list[dict[str, Any]] | None = None,
        phase: str = "Running", **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod", "metadata": _meta(name, namespace, labels),
        "spec": {"containers": [{"name": "app", "image": "busybox", "ports": list(ports or [])}]},
        "status": {"phase": phase},
    }
    if node:
        obj["spec"]["nodeName"] = node
    if ips:
        obj["status"]["podIP"] = ips[0]
        obj["status"]["podIPs"] = [{"ip": ip} for ip in ips]
    obj.update(extra)
    return obj


def service(name: str, namespace: str = "default", *, cluster_ip: str = "10.96.0.10",
            ports: list[dict[str, Any]] | None = None, type: str = "ClusterIP",  # noqa: A002
            **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type, "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                            "ports": ports if ports is not None else [
                                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace), "spec": body}


def endpointslice(name: str, namespace: str = "default", *, service: str, addresses: list[str],
                  port: int = 8080, address_type: str = "IPv4", node: str = "node-1") -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": _meta(name, namespace, {"kubernetes.io/service-name": service}),
        "addressType": address_type,
        "ports": [{"name": "http", "protocol": "TCP", "port": port}],
        "endpoints": [{"addresses": [a], "conditions": {"ready": True}, "nodeName": node} for a in addresses],
    }


def network_policy(name: str, namespace: str = "default", *, pod_selector: dict[str, Any] | None = None,
                   ingress: list[dict[str, Any]] | None = None, egress: list[dict[str, Any]] | None = None,
                   policy_types: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": pod_selector if pod_selector is not None else {}}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    if policy_types is not None:
        spec["policyTypes"] = policy_types
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": _meta(name, namespace), "spec": spec}
