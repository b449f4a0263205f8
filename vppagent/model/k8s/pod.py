"""Pods as the agent sees them.

Owns: the Pod fields the data plane and policy need (IPs, labels, named
ports, node, lifecycle) and their validation. Container images, volumes,
resources and status conditions are not modelled, so their churn never
reaches the reconciler. Must not touch: the API, logging, pod interfaces
(the CNI side owns those).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .common import ANNOTATION_PREFIX, ObjectKey, Protocol
from .fields import EMPTY_MAP, FrozenMap, IPAddress, Reader, read_metadata

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class ContainerPort:
    """A named container port: what a Service targetPort or policy port name refers to."""

    name: str
    protocol: Protocol
    port: int


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    uid: str = ""
    node_name: str = ""  # empty until scheduled
    host_network: bool = False
    ips: tuple[IPAddress, ...] = ()  # primary first, as status.podIPs lists them
    labels: FrozenMap = EMPTY_MAP
    annotations: FrozenMap = EMPTY_MAP  # vppagent.io/* only
    ports: tuple[ContainerPort, ...] = ()  # named ports only
    phase: str = "Pending"
    deleted: bool = False  # metadata.deletionTimestamp is set: terminating

    KIND = "Pod"

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.KIND, self.namespace, self.name)

    @property
    def terminal(self) -> bool:
        """The pod will never run again (its IP may already be reused)."""
        return self.phase in TERMINAL_PHASES

    def named_port(self, name: str, protocol: Protocol) -> int | None:
        for p in self.ports:
            if p.name == name and p.protocol is protocol:
                return p.port
        return None


def _ports(r: Reader, spec: Mapping[str, Any]) -> tuple[ContainerPort, ...]:
    out: list[ContainerPort] = []
    # Sidecars (restartable init containers) can expose named ports too.
    for group in ("initContainers", "containers"):
        for ci, container in enumerate(r.items(spec.get(group), f"spec.{group}")):
            cpath = f"spec.{group}[{ci}]"
            container = r.mapping(container, cpath)
            for pi, port in enumerate(r.items(container.get("ports"), f"{cpath}.ports")):
                ppath = f"{cpath}.ports[{pi}]"
                port = r.mapping(port, ppath)
                if not port.get("name"):
                    continue
                out.append(
                    ContainerPort(
                        name=r.port_name(port.get("name"), f"{ppath}.name"),
                        protocol=r.enum(port.get("protocol"), f"{ppath}.protocol", Protocol,
                                        default=Protocol.TCP),
                        port=r.port(port.get("containerPort"), f"{ppath}.containerPort"),
                    )
                )
    return tuple(out)


def pod_from_api(obj: Mapping[str, Any]) -> Pod:
    """Build a Pod from the API's JSON (a dict); raises InvalidObject."""
    r, meta = read_metadata(Pod.KIND, obj, namespaced=True)
    spec = r.mapping(obj.get("spec"), "spec")
    status = r.mapping(obj.get("status"), "status")

    raw_ips = r.items(status.get("podIPs"), "status.podIPs")
    if raw_ips:
        ips = tuple(
            r.ip(r.mapping(entry, f"status.podIPs[{i}]").get("ip"), f"status.podIPs[{i}].ip")
            for i, entry in enumerate(raw_ips)
        )
    elif status.get("podIP"):
        ips = (r.ip(status["podIP"], "status.podIP"),)
    else:
        ips = ()
    return Pod(
        namespace=r.namespace,
        name=r.name,
        uid=r.string(meta.get("uid"), "metadata.uid"),
        node_name=r.string(spec.get("nodeName"), "spec.nodeName"),
        host_network=r.boolean(spec.get("hostNetwork"), "spec.hostNetwork", default=False),
        ips=ips,
        labels=r.str_map(meta.get("labels"), "metadata.labels"),
        annotations=r.str_map(meta.get("annotations"), "metadata.annotations", (ANNOTATION_PREFIX,)),
        ports=_ports(r, spec),
        phase=r.string(status.get("phase"), "status.phase", default="Pending"),
        deleted=bool(meta.get("deletionTimestamp")),
    )
