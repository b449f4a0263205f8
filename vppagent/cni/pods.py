"""The ``pods`` feature: the VPP side of every pod attached on this node.

Owns: the node's attachments and the state that lasts across CNI calls:
IPAM (``ipam.py``), the attachment records (``store.py``), the spare pool
(``pool.py``); and what VPP must hold for them (``pod_interface_kind.py``,
``spare_kind.py``, the gateway loopback), and not hold (``orphan_kind.py``:
what a crash left untagged). The CNI verbs (``backend.py``)
change the attachments through the small methods below, ask the agent loop
to recompute (``submit``) and wait on ``vpp_waiter`` until the reconciler
thread reports their objects applied or failed (``settle``).

Start-up: the constructor only records the configuration. ``start()``, which
the agent calls before the CNI server listens, opens the state directory,
loads the records and frees what a crash left behind (addresses no record
holds, host veths of no attachment).

Concurrency: ``desired`` and ``settle`` run on the reconciler thread; the
other methods on CNI threads. ``self._lock`` guards the dictionaries, never I/O.

Must not touch: VPP directly (only through intents), Kubernetes (the Node
and Pod objects come from the cluster state).
"""
from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vppagent.cni import linux, orphan_kind, pod_interface_kind, pool, spare_kind
from vppagent.atomic import private_dir
from vppagent.cni.ipam import Ipam, IpamError
from vppagent.cni.pool import SparePool
from vppagent.cni.rcu import RcuExpedited
from vppagent.cni.store import AttachmentStore
from vppagent.crash import NONE as NO_CRASH, CrashPoints
from vppagent.feature import Feature
from vppagent.kinds.loopback_kind import KIND as LOOPBACK_KIND, LoopbackDescriptor
from vppagent.model.cluster_state import ClusterState
from vppagent.model.k8s import Node, ObjectKey
from vppagent.model.podnet import Attachment, Driver
from vppagent.reconcile import Intent, Key, Problem
from vppagent.vpp import tap

log = logging.getLogger(__name__)

MEMIF_ANNOTATION = "vppagent.io/memif"
INVALID_MEMIF = "InvalidMemifAnnotation"
MEMIF_IFNAME = "memif0"


class NotProgrammed(Exception):
    """A caller's objects did not reach VPP: VPP ``refused`` them, or the reconciler ran out of time."""

    def __init__(self, what: str, details: str, *, refused: bool):
        super().__init__(f"VPP refused {what}" if refused else f"VPP did not finish {what} in time")
        self.details = details
        self.refused = refused


class NotStarted(RuntimeError):
    """The feature's state was used before ``start()`` opened it."""


@dataclass
class _Waiter:
    """A CNI call waiting for the reconciler: these keys present with these values, those absent."""

    present: dict[Key, Any]
    absent: set[Key]
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


class PodNetwork(Feature):
    """The ``pods`` feature (see the module docstring)."""

    name = "pods"
    watches = ("Node", "Pod")

    def __init__(self, *, node_name: str, state_dir: Path, table_id: int = 0, mtu: int = 1450,
                 driver: str = "auto", submit: Callable[[], None] = lambda: None,
                 settle_timeout_s: float = 20.0, services: bool = False, snat: bool = False,
                 spares: int = 0, af_packet_version: int = 2, rcu_expedited: bool = False,
                 offloads: bool = False, crash: CrashPoints = NO_CRASH):
        self.node_name = node_name
        self.offloads = offloads  # veth pods keep TCP checksum/TSO/GSO (config pod_offloads)
        self.table_id = table_id
        self.mtu = mtu
        self.driver = _choose_driver(driver)
        self.settle_timeout_s = settle_timeout_s
        self.services = services  # pod interfaces get the cnat feature (and SNAT maps with snat)
        self.snat = services and snat
        self.submit = submit
        self.crash = crash  # the CNI steps' crash points (vppagent/crash.py)
        self._state_dir = Path(state_dir)
        self._rcu_expedited = rcu_expedited
        self._ipam: Ipam | None = None
        self._store: AttachmentStore | None = None
        self._lock = threading.Lock()
        self._attachments: dict[tuple[str, str], Attachment] = {}
        self._waiters: list[_Waiter] = []
        self._ranges: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
        self._pods: dict[tuple[str, str], Any] = {}
        self._adopt: dict[tuple[str, str], int] = {}  # ADDs in progress that took a spare: its sw_if_index
        self._intent_memo: dict[tuple[str, str], tuple[Attachment, list[Intent]]] = {}  # reconciler thread only
        template = pool.Spare("", "", mtu, table_id, pod_interface_kind.gateway_loopback(table_id).key,
                              self.services, self.snat, offloads)
        self.pool = SparePool(size=spares if self.driver is Driver.VETH else 0, mtu=mtu, submit=submit,
                              template=template, offloads=offloads, crash=crash)
        self.rings = pool.Rings(version=af_packet_version, gso=offloads)
        self._rcu = RcuExpedited()

    # -- start and stop -------------------------------------------------------------------

    def start(self) -> None:
        """Open the state directory and recover from a crash; before the CNI server starts."""
        if self._ipam is not None:
            return
        private_dir(self._state_dir)
        self._ipam = Ipam(self._state_dir / "ipam")
        self._store = AttachmentStore(self._state_dir)
        with self._lock:
            self._attachments = {a.key: a for a in self._store.all()}
        self._recover()
        if self._rcu_expedited:
            self._rcu.enable()
        self.pool.start()

    def _recover(self) -> None:
        """After a crash: free addresses no record holds, delete host veths no attachment owns."""
        valid = set(self._attachments)
        freed = self.ipam.gc(valid)
        # A crash between creating a veth and recording the attachment leaves a host end;
        # spares are not kept across restarts (their VPP side is not desired any more).
        ours = {a.host_ifname for a in self._attachments.values() if a.driver is Driver.VETH}
        ours |= {pool.parent_of(n) for n in ours if pool.HOST_IFNAME.fullmatch(n)}
        stray = [n for n in linux.host_links(pod_interface_kind.HOST_IFNAME) + pool.spare_links() if n not in ours]
        for name in stray:
            linux.delete_host_link(name)
        if freed or stray or self._attachments:
            log.info("pod attachments recovered", extra={"attachments": len(valid), "ips_freed": len(freed),
                                                          "stray_veths_deleted": len(stray)})

    def close(self) -> None:
        """Stop the spare pool and release the state directory; the data plane stays as it is."""
        self.pool.close()
        if self._ipam is not None:
            self._ipam.close()
        self._rcu.restore()

    @property
    def ipam(self) -> Ipam:
        if self._ipam is None:
            raise NotStarted("the pods feature has not started: its IPAM is not open")
        return self._ipam

    @property
    def store(self) -> AttachmentStore:
        if self._store is None:
            raise NotStarted("the pods feature has not started: its attachment records are not open")
        return self._store

    # -- the feature (reconciler thread) ------------------------------------------------

    def descriptors(self) -> list[Any]:
        return [LoopbackDescriptor(), pod_interface_kind.PodInterfaceDescriptor(rings=self.rings),
                spare_kind.SpareDescriptor(self.pool, rings=self.rings), orphan_kind.OrphanDescriptor(),
                pod_interface_kind.route_descriptor(self.table_id, lambda: self._ranges)]

    def desired(self, cluster: ClusterState) -> tuple[list[Intent], list[Problem]]:
        problems: list[Problem] = []
        node: Node | None = cluster.nodes.get(self.node_name)
        if node is not None and node.pod_cidrs != self._ranges:
            try:
                self.ipam.set_ranges(node.pod_cidrs)
                self._ranges = tuple(node.pod_cidrs)
                log.info("pod CIDRs", extra={"cidrs": ",".join(map(str, self._ranges))})
            except IpamError as e:
                problems.append(Problem(node.key, "InvalidPodCIDR", str(e)))
        pods = {(p.namespace, p.name): p for p in getattr(cluster, "others", {}).values()
                if getattr(p, "KIND", "") == "Pod"}
        problems += [_memif_problem(p) for p in pods.values()
                     if p.node_name == self.node_name and not _memif_annotation_valid(p)]
        with self._lock:
            self._pods = pods
            attachments = list(self._attachments.values())
        gateway = pod_interface_kind.gateway_loopback(self.table_id)
        intents = [Intent(LOOPBACK_KIND, gateway)] + self.pool.intents()
        # Per attachment, its intents are computed once (attachments are immutable values):
        # a pod ADD on a node of hundreds of pods costs a lookup per pod, not their expansion.
        memo: dict[tuple[str, str], tuple[Attachment, list[Intent]]] = {}
        for a in attachments:
            hit = self._intent_memo.get(a.key)
            if hit is None or hit[0] is not a:
                origin = ObjectKey("Pod", a.pod_namespace, a.pod_name) if a.pod_name else None
                mine: list[Intent] = []
                for value, routes in self._vpp_objects(a):
                    mine.append(Intent(pod_interface_kind.KIND, value, origin))
                    mine.extend(Intent(pod_interface_kind.ROUTE_KIND, r, origin) for r in routes)
                hit = (a, mine)
            memo[a.key] = hit
            intents.extend(hit[1])
        self._intent_memo = memo
        return intents, problems

    def _vpp_objects(self, a: Attachment) -> list[tuple[pod_interface_kind.PodInterface, list[Any]]]:
        gateway = pod_interface_kind.gateway_loopback(self.table_id).key
        main_ips = [ip for ip in a.ips if not ip.startswith("memif:")]
        neigh = tuple((str(ipaddress.ip_interface(ip).ip), a.pod_mac) for ip in main_ips) \
            if a.driver is Driver.VETH else ()
        with self._lock:
            adopt = self._adopt.get(a.key)
        main = pod_interface_kind.PodInterface(
            pod_interface_kind.interface_name(a.container_id, a.ifname), a.driver, a.host_ifname,
            a.vpp_mac if a.driver is Driver.VETH else "", a.mtu, self.table_id, gateway, neigh, a.netns,
            cnat=self.services, snat=self.snat, adopt=adopt, gso_fix=self.offloads and a.driver is Driver.VETH)
        out = [(main, pod_interface_kind.pod_routes(main, main_ips))]
        if a.memif_socket:
            m = pod_interface_kind.PodInterface(
                pod_interface_kind.interface_name(a.container_id, MEMIF_IFNAME), Driver.MEMIF,
                a.memif_socket, "", a.mtu, self.table_id, gateway, cnat=self.services, snat=self.snat)
            memif_ips = [ip.removeprefix("memif:") for ip in a.ips if ip.startswith("memif:")]
            out.append((m, pod_interface_kind.pod_routes(m, memif_ips)))
        return out

    def settle(self, applied: Any, failures: Mapping[Key, Any], connected: bool) -> None:
        """After each reconcile pass: wake the CNI calls whose objects are now in place (or failed)."""
        self.pool.settle(applied, failures)
        with self._lock:
            waiters = list(self._waiters)
        for w in waiters:
            failed = [(k, f) for k, f in failures.items() if k in w.present]
            if failed:
                k, f = failed[0]
                w.error = f"VPP refused {f.op} of {k}: {f.error}"
                w.done.set()
                continue
            ok = all((a := applied.get(k)) is not None and a.value == v for k, v in w.present.items()) \
                and not any(k in applied for k in w.absent)
            if ok:
                w.done.set()

    # -- for the CNI backend (CNI threads) -------------------------------------------------

    @contextmanager
    def vpp_waiter(self, present: Mapping[Key, Any], absent: Collection[Key],
                   what: str) -> Iterator[Callable[[], None]]:
        """Ask the reconciler now, wait later: the caller works meanwhile, then calls ``wait()``,
        which raises ``NotProgrammed`` if VPP refused the objects or time ran out."""
        w = _Waiter(dict(present), set(absent))
        with self._lock:
            self._waiters.append(w)

        def wait() -> None:
            if not w.done.wait(self.settle_timeout_s):
                raise NotProgrammed(what, f"waited {self.settle_timeout_s:g}s for the reconciler (is VPP up?)",
                                    refused=False)
            if w.error:
                raise NotProgrammed(what, w.error, refused=True)

        try:
            self.submit()
            yield wait
        finally:
            with self._lock:
                self._waiters.remove(w)

    def keys(self, a: Attachment) -> dict[Key, Any]:
        """The VPP objects ``a`` needs, by key."""
        out: dict[Key, Any] = {}
        for iface, routes in self._vpp_objects(a):
            out[iface.key] = iface
            for r in routes:
                out[Key(pod_interface_kind.ROUTE_KIND, (r.table_id, r.prefix))] = r
        return out

    def attachment(self, key: tuple[str, str]) -> Attachment | None:
        with self._lock:
            return self._attachments.get(key)

    def record(self, a: Attachment) -> None:
        """``a`` is desired from now on (the next recompute programs it)."""
        with self._lock:
            self._attachments[a.key] = a

    def forget(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._attachments.pop(key, None)

    def attachments(self) -> list[Attachment]:
        with self._lock:
            return list(self._attachments.values())

    def attachment_keys(self) -> set[tuple[str, str]]:
        with self._lock:
            return set(self._attachments)

    def pod(self, key: tuple[str, str]) -> Any:
        """The Pod object (namespace, name) as the last recompute saw it, or None."""
        with self._lock:
            return self._pods.get(key)

    @property
    def ranges(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return self._ranges

    def adopting(self, key: tuple[str, str], sw_if_index: int) -> None:
        """An ADD took the spare ``sw_if_index``: the pod's interface adopts it, not a new one."""
        with self._lock:
            self._adopt[key] = sw_if_index

    def give_back(self, key: tuple[str, str], taken: pool.Taken, *, adopted: bool) -> None:
        """The spare an ADD took is the pod's now (``adopted``), or the reconciler deletes it."""
        with self._lock:
            self._adopt.pop(key, None)
        self.pool.release(taken, adopted=adopted)
        if not adopted:
            self.submit()  # the reconciler deletes the spare


# -- module helpers ---------------------------------------------------------------------------------


def _choose_driver(driver: str) -> Driver:
    if driver == "tun":
        return Driver.TUN
    if driver == "veth":
        return Driver.VETH
    return Driver.TUN if tap.vhost_net_available() else Driver.VETH


def _memif_annotation_valid(pod: Any) -> bool:
    value = pod.annotations.get(MEMIF_ANNOTATION)
    return value is None or str(value).strip().lower() in ("true", "false")


def _memif_problem(pod: Any) -> Problem:
    """A memif annotation that is neither "true" nor "false": the pod gets no memif, and is told why."""
    value = pod.annotations.get(MEMIF_ANNOTATION)
    return Problem(pod.key, INVALID_MEMIF, f"{pod.key}: annotation {MEMIF_ANNOTATION}={value!r} is not "
                   '"true" or "false"; the pod gets no memif interface')


__all__ = ["INVALID_MEMIF", "MEMIF_ANNOTATION", "MEMIF_IFNAME", "NotProgrammed", "NotStarted", "PodNetwork"]
