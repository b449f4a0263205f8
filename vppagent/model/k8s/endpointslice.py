"""EndpointSlices (discovery.k8s.io/v1): the backends of Services.

Owns: EndpointSlice, Endpoint and EndpointPort, the API's defaults for
endpoint conditions, and validation (addresses must match the slice's
address type). Must not touch: the API, logging, backend selection.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .common import ObjectKey, Protocol
from .fields import IPAddress, Reader, read_metadata

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class AddressType(StrEnum):
    IPV4 = "IPv4"
    IPV6 = "IPv6"
    FQDN = "FQDN"


@dataclass(frozen=True)
class EndpointPort:
    name: str
    protocol: Protocol
    port: int | None  # None: the API allows a port-less entry ("all ports")


@dataclass(frozen=True)
class Endpoint:
    # IP slices only. FQDN slices carry hostnames the data plane cannot use
    # (kube-proxy ignores them too), so their endpoints have no addresses.
    addresses: tuple[IPAddress, ...]
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str = ""
    target_ref: ObjectKey | None = None  # usually the backing Pod


@dataclass(frozen=True)
class EndpointSlice:
    namespace: str
    name: str
    uid: str = ""
    service_name: str = ""  # from the kubernetes.io/service-name label; empty if unmanaged
    address_type: AddressType = AddressType.IPV4
    ports: tuple[EndpointPort, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()

    KIND = "EndpointSlice"

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.KIND, self.namespace, self.name)

    @property
    def service_key(self) -> ObjectKey | None:
        return ObjectKey("Service", self.namespace, self.service_name) if self.service_name else None


def _endpoint(r: Reader, raw: Any, path: str, address_type: AddressType, namespace: str) -> Endpoint:
    raw = r.mapping(raw, path)
    addresses: tuple[IPAddress, ...] = ()
    raw_addrs = r.items(raw.get("addresses"), f"{path}.addresses")
    if address_type is not AddressType.FQDN:
        want = 4 if address_type is AddressType.IPV4 else 6
        parsed = []
        for i, a in enumerate(raw_addrs):
            ip = r.ip(a, f"{path}.addresses[{i}]")
            if ip.version != want:
                r.fail(f"{path}.addresses[{i}]", f"{a!r} is not an {address_type.value} address")
            parsed.append(ip)
        addresses = tuple(parsed)
    cond = r.mapping(raw.get("conditions"), f"{path}.conditions")
    # API semantics: unknown readiness means ready; unknown serving defers to ready.
    ready = r.boolean(cond.get("ready"), f"{path}.conditions.ready", default=True)
    serving = r.boolean(cond.get("serving"), f"{path}.conditions.serving", default=ready)
    terminating = r.boolean(cond.get("terminating"), f"{path}.conditions.terminating", default=False)
    target_ref = None
    if raw.get("targetRef") is not None:
        ref = r.mapping(raw.get("targetRef"), f"{path}.targetRef")
        target_ref = ObjectKey(
            r.string(ref.get("kind"), f"{path}.targetRef.kind"),
            r.string(ref.get("namespace"), f"{path}.targetRef.namespace", default=namespace),
            r.string(ref.get("name"), f"{path}.targetRef.name"),
        )
    return Endpoint(
        addresses=addresses,
        ready=ready,
        serving=serving,
        terminating=terminating,
        node_name=r.string(raw.get("nodeName"), f"{path}.nodeName"),
        target_ref=target_ref,
    )


def endpointslice_from_api(obj: Mapping[str, Any]) -> EndpointSlice:
    """Build an EndpointSlice from the API's JSON (a dict); raises InvalidObject."""
    r, meta = read_metadata(EndpointSlice.KIND, obj, namespaced=True)
    address_type = r.enum(obj.get("addressType"), "addressType", AddressType)
    ports = []
    for i, raw in enumerate(r.items(obj.get("ports"), "ports")):
        path = f"ports[{i}]"
        raw = r.mapping(raw, path)
        ports.append(
            EndpointPort(
                name=r.string(raw.get("name"), f"{path}.name"),
                protocol=r.enum(raw.get("protocol"), f"{path}.protocol", Protocol, default=Protocol.TCP),
                port=None if raw.get("port") is None else r.port(raw.get("port"), f"{path}.port"),
            )
        )
    labels = r.mapping(meta.get("labels"), "metadata.labels")
    return EndpointSlice(
        namespace=r.namespace,
        name=r.name,
        uid=r.string(meta.get("uid"), "metadata.uid"),
        service_name=r.string(labels.get(SERVICE_NAME_LABEL), f"metadata.labels[{SERVICE_NAME_LABEL!r}]"),
        address_type=address_type,
        ports=tuple(ports),
        endpoints=tuple(
            _endpoint(r, ep, f"endpoints[{i}]", address_type, r.namespace)
            for i, ep in enumerate(r.items(obj.get("endpoints"), "endpoints"))
        ),
    )
