"""NetworkPolicies (networking.k8s.io/v1), validated and with API defaults applied.

Owns: NetworkPolicy and its parts (PolicyRule, PolicyPeer, IPBlock,
PolicyPort). Semantics carried by the model, as in the API:

- a rule with no peers allows every peer; a rule with no ports allows every port;
- ``policy_types`` defaults to Ingress, plus Egress when egress rules exist;
- a peer is either an ipBlock alone, or pod and/or namespace selectors.

Must not touch: selector evaluation against pods (the policy compiler does),
the API, logging.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .common import ObjectKey, Protocol
from .fields import IPNetwork, Reader, read_metadata
from .selector import LabelSelector


class PolicyType(StrEnum):
    INGRESS = "Ingress"
    EGRESS = "Egress"


@dataclass(frozen=True)
class IPBlock:
    cidr: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True)
class PolicyPeer:
    """One ``from``/``to`` entry. Selectors are None when absent (not the same as empty)."""

    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None


@dataclass(frozen=True)
class PolicyPort:
    protocol: Protocol = Protocol.TCP
    port: int | str | None = None  # None: every port of the protocol
    end_port: int | None = None  # inclusive range end; only with a numeric port


@dataclass(frozen=True)
class PolicyRule:
    peers: tuple[PolicyPeer, ...] = ()  # empty: every peer
    ports: tuple[PolicyPort, ...] = ()  # empty: every port


@dataclass(frozen=True)
class NetworkPolicy:
    namespace: str
    name: str
    uid: str = ""
    pod_selector: LabelSelector = LabelSelector()
    policy_types: frozenset[PolicyType] = frozenset({PolicyType.INGRESS})
    ingress: tuple[PolicyRule, ...] = ()
    egress: tuple[PolicyRule, ...] = ()

    KIND = "NetworkPolicy"

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.KIND, self.namespace, self.name)


def _ip_block(r: Reader, raw: Any, path: str) -> IPBlock:
    raw = r.mapping(raw, path)
    cidr = r.cidr(raw.get("cidr"), f"{path}.cidr")
    excepts = []
    for i, e in enumerate(r.items(raw.get("except"), f"{path}.except")):
        ex = r.cidr(e, f"{path}.except[{i}]")
        # Same rule as the API server: an exception must be strictly inside the block.
        if ex.version != cidr.version or not ex.subnet_of(cidr) or ex.prefixlen <= cidr.prefixlen:  # type: ignore[arg-type]
            r.fail(f"{path}.except[{i}]", f"{e!r} is not strictly within {str(cidr)!r}")
        excepts.append(ex)
    return IPBlock(cidr, tuple(excepts))


def _peer(r: Reader, raw: Any, path: str) -> PolicyPeer:
    raw = r.mapping(raw, path)
    pod_sel = raw.get("podSelector")
    ns_sel = raw.get("namespaceSelector")
    block = raw.get("ipBlock")
    if block is not None and (pod_sel is not None or ns_sel is not None):
        r.fail(path, "ipBlock cannot be combined with podSelector or namespaceSelector")
    if block is None and pod_sel is None and ns_sel is None:
        r.fail(path, "must specify podSelector, namespaceSelector or ipBlock")
    return PolicyPeer(
        pod_selector=None if pod_sel is None else LabelSelector.from_api(pod_sel, r, f"{path}.podSelector"),
        namespace_selector=None if ns_sel is None else LabelSelector.from_api(
            ns_sel, r, f"{path}.namespaceSelector"),
        ip_block=None if block is None else _ip_block(r, block, f"{path}.ipBlock"),
    )


def _port(r: Reader, raw: Any, path: str) -> PolicyPort:
    raw = r.mapping(raw, path)
    port = None if raw.get("port") is None else r.int_or_name(raw.get("port"), f"{path}.port")
    end_port = None
    if raw.get("endPort") is not None:
        if not isinstance(port, int):
            r.fail(f"{path}.endPort", "requires a numeric port")
        end_port = r.port(raw.get("endPort"), f"{path}.endPort")
        if end_port < port:
            r.fail(f"{path}.endPort", f"{end_port} is below port {port}")
    return PolicyPort(
        protocol=r.enum(raw.get("protocol"), f"{path}.protocol", Protocol, default=Protocol.TCP),
        port=port,
        end_port=end_port,
    )


def _rules(r: Reader, raw: Any, path: str, peers_field: str) -> tuple[PolicyRule, ...]:
    rules = []
    for i, rule in enumerate(r.items(raw, path)):
        rpath = f"{path}[{i}]"
        rule = r.mapping(rule, rpath)
        rules.append(
            PolicyRule(
                peers=tuple(
                    _peer(r, p, f"{rpath}.{peers_field}[{j}]")
                    for j, p in enumerate(r.items(rule.get(peers_field), f"{rpath}.{peers_field}"))
                ),
                ports=tuple(
                    _port(r, p, f"{rpath}.ports[{j}]")
                    for j, p in enumerate(r.items(rule.get("ports"), f"{rpath}.ports"))
                ),
            )
        )
    return tuple(rules)


def networkpolicy_from_api(obj: Mapping[str, Any]) -> NetworkPolicy:
    """Build a NetworkPolicy from the API's JSON (a dict); raises InvalidObject."""
    r, meta = read_metadata(NetworkPolicy.KIND, obj, namespaced=True)
    spec = r.mapping(obj.get("spec"), "spec")
    ingress = _rules(r, spec.get("ingress"), "spec.ingress", "from")
    egress = _rules(r, spec.get("egress"), "spec.egress", "to")
    raw_types = r.items(spec.get("policyTypes"), "spec.policyTypes")
    if raw_types:
        types = frozenset(r.enum(t, f"spec.policyTypes[{i}]", PolicyType) for i, t in enumerate(raw_types))
    else:
        types = frozenset({PolicyType.INGRESS} | ({PolicyType.EGRESS} if egress else set()))
    return NetworkPolicy(
        namespace=r.namespace,
        name=r.name,
        uid=r.string(meta.get("uid"), "metadata.uid"),
        pod_selector=LabelSelector.from_api(spec.get("podSelector"), r, "spec.podSelector"),
        policy_types=types,
        ingress=ingress,
        egress=egress,
    )
