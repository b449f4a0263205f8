"""Pod networking: the agent's CNI backend and the ``pods`` feature.

Owns: what the CNI commands do on the node (ADD, DEL, CHECK, GC, STATUS):
IPAM (``ipam.py``), the pod's Linux side (``linux.py``), the attachment
records (``store.py``), and the VPP side through the reconciler
(``pod_interface_kind.py``): a CNI call never talks to VPP itself. It changes the
set of attachments, asks the agent loop to recompute (``submit``), and
waits until the reconciler thread reports the pod's objects applied or
failed (``settle``). So the one-writer rule for VPP holds, and a pod
attached while VPP restarts is re-programmed like everything else.

Concurrency: CNI calls arrive on gRPC worker threads. Calls for one
container are serialised by a per-container lock; different containers
proceed in parallel. ``self._lock`` only guards the dictionaries, never
I/O. ``desired`` runs on the reconciler thread and reads a copy.

Failure behaviour: an ADD that fails at any step undoes what it did, in
reverse (VPP objects, veth, IP), before it answers; DEL is idempotent and
succeeds for unknown containers and vanished netns, as the spec says.

Must not touch: VPP directly (only through intents), Kubernetes (the Node
and Pod objects come from the cluster state).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vppagent.cni import linux, pod_interface_kind, pool, spare_kind
from vppagent.cni.pool import SparePool
from vppagent.cni.atomic import private_dir
from vppagent.cni.ipam import Ipam, IpamError, RangeExhausted
from vppagent.cni.rcu import RcuExpedited
from vppagent.cni.store import AttachmentStore
from vppagent.feature import Feature
from vppagent.model.cluster_state import ClusterState
from vppagent.model.k8s import Node, ObjectKey
from vppagent.model.podnet import Attachment, Driver
from vppagent.reconcile import Intent, Key, Problem
from vppagent.kinds.loopback_kind import KIND as LOOPBACK_KIND, LoopbackDescriptor
from vppagent.vpp import tap

log = logging.getLogger(__name__)

# CNI error codes (the spec's, then ours from 100 up; 100/101 are the plugin's own).
ERR_UNKNOWN_CONTAINER = 3
ERR_INVALID_ENV = 4
ERR_IO = 5
ERR_INVALID_CONFIG = 7
ERR_TRY_AGAIN = 11
ERR_NOT_AVAILABLE = 50
ERR_EXHAUSTED = 102
ERR_VPP_REFUSED = 103
ERR_CHECK_FAILED = 104
ERR_DUPLICATE = 105

MEMIF_ANNOTATION = "vppagent.io/memif"
INVALID_MEMIF = "InvalidMemifAnnotation"
MEMIF_IFNAME = "memif0"
_IFNAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class CniFailure(Exception):
    """A CNI call that failed: the spec's code, message and details, as the plugin prints them."""

    def __init__(self, code: int, msg: str, details: str = ""):
        super().__init__(f"[{code}] {msg}" + (f": {details}" if details else ""))
        self.code = code
        self.msg = msg
        self.details = details


@dataclass(frozen=True)
class CniCall:
    """One CNI invocation as the plugin forwarded it."""

    container_id: str
    netns: str
    ifname: str
    args: Mapping[str, str] = field(default_factory=dict)  # CNI_ARGS, parsed
    config: Mapping[str, Any] = field(default_factory=dict)
    prev_result: Mapping[str, Any] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.container_id, self.ifname)

    @property
    def pod(self) -> tuple[str, str]:
        return self.args.get("K8S_POD_NAMESPACE", ""), self.args.get("K8S_POD_NAME", "")


def parse_cni_args(text: str) -> dict[str, str]:
    """``K=V;K=V`` as CNI_ARGS carries it."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        k, sep, v = part.partition("=")
        if not sep or not k:
            raise CniFailure(ERR_INVALID_ENV, "CNI_ARGS is malformed", f"{part!r} is not KEY=VALUE")
        out[k] = v
    return out


@dataclass
class _Waiter:
    """A CNI call waiting for the reconciler: these keys present with these values, those absent."""

    present: dict[Key, Any]
    absent: set[Key]
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


class PodNetwork(Feature):
    """The ``pods`` feature and the CNI backend (see the module docstring)."""

    name = "pods"
    watches = ("Node", "Pod")

    def __init__(self, *, node_name: str, state_dir: Path, table_id: int = 0, mtu: int = 1450,
                 driver: str = "auto", submit: Callable[[], None] = lambda: None,
                 ready: Callable[[], bool] = lambda: True, settle_timeout_s: float = 20.0,
                 services: bool = False, snat: bool = False, spares: int = 0,
                 af_packet_version: int = 2, rcu_expedited: bool = False, offloads: bool = False):
        self.node_name = node_name
        self.offloads = offloads  # veth pods keep TCP checksum/TSO/GSO (config pod_offloads)
        self.table_id = table_id
        self.mtu = mtu
        self.driver = _choose_driver(driver)
        self.settle_timeout_s = settle_timeout_s
        self.services = services  # pod interfaces get the cnat feature (and SNAT maps with snat)
        self.snat = services and snat
        self._submit = submit
        self._ready = ready
        state_dir = Path(state_dir)
        private_dir(state_dir)
        self.ipam = Ipam(state_dir / "ipam")
        self.store = AttachmentStore(state_dir)
        self._lock = threading.Lock()
        self._container_locks: dict[str, threading.Lock] = {}
        self._attachments: dict[tuple[str, str], Attachment] = {a.key: a for a in self.store.all()}
        self._waiters: list[_Waiter] = []
        self._ranges: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
        self._pods: dict[tuple[str, str], Any] = {}
        self._adopt: dict[tuple[str, str], int] = {}  # ADDs in progress that took a spare: its sw_if_index
        self._intent_memo: dict[tuple[str, str], tuple[Attachment, list[Intent]]] = {}  # reconciler thread only
        template = pool.Spare("", "", mtu, table_id, pod_interface_kind.gateway_loopback(table_id).key,
                              self.services, self.snat, offloads)
        self.pool = SparePool(size=spares if self.driver is Driver.VETH else 0, mtu=mtu, submit=submit,
                              template=template, offloads=offloads)
        self.rings = pool.Rings(version=af_packet_version, gso=offloads)
        self._recover()
        self._rcu = RcuExpedited()
        if rcu_expedited:
            self._rcu.enable()
        self.pool.start()

    # -- start-up ---------------------------------------------------------------------

    def _recover(self) -> None:
        """After a crash: free addresses no record holds. Runs before the CNI server starts."""
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

    # -- the feature (reconciler thread) ------------------------------------------------

    def descriptors(self) -> list[Any]:
        return [LoopbackDescriptor(), pod_interface_kind.PodInterfaceDescriptor(rings=self.rings),
                spare_kind.SpareDescriptor(self.pool, rings=self.rings),
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
            m = pod_interface_kind.PodInterface(pod_interface_kind.interface_name(a.container_id, MEMIF_IFNAME), Driver.MEMIF,
                                       a.memif_socket, "", a.mtu, self.table_id, gateway,
                                       cnat=self.services, snat=self.snat)
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

    # -- helpers ------------------------------------------------------------------------------

    def _container_lock(self, container_id: str) -> threading.Lock:
        with self._lock:
            return self._container_locks.setdefault(container_id, threading.Lock())

    def _wait_for_vpp(self, present: Mapping[Key, Any], absent: Collection[Key], what: str) -> None:
        with self._vpp_waiter(present, absent, what) as wait:
            wait()

    @contextmanager
    def _vpp_waiter(self, present: Mapping[Key, Any], absent: Collection[Key],
                    what: str) -> Iterator[Callable[[], None]]:
        """Ask the reconciler now, wait later: the caller works meanwhile, then calls ``wait()``."""
        w = _Waiter(dict(present), set(absent))
        with self._lock:
            self._waiters.append(w)

        def wait() -> None:
            if not w.done.wait(self.settle_timeout_s):
                raise CniFailure(ERR_TRY_AGAIN, f"VPP did not finish {what} in time",
                                 f"waited {self.settle_timeout_s:g}s for the reconciler (is VPP up?)")
            if w.error:
                raise CniFailure(ERR_VPP_REFUSED, f"VPP refused {what}", w.error)

        try:
            self._submit()
            yield wait
        finally:
            with self._lock:
                self._waiters.remove(w)

    def _keys(self, a: Attachment) -> dict[Key, Any]:
        out: dict[Key, Any] = {}
        for iface, routes in self._vpp_objects(a):
            out[iface.key] = iface
            for r in routes:
                out[Key(pod_interface_kind.ROUTE_KIND, (r.table_id, r.prefix))] = r
        return out

    def _pod_wants_memif(self, call: CniCall) -> bool:
        with self._lock:
            pod = self._pods.get(call.pod)
        return bool(pod is not None and str(pod.annotations.get(MEMIF_ANNOTATION, "")).strip().lower() == "true")

    # -- ADD ----------------------------------------------------------------------------------

    def add(self, call: CniCall) -> dict[str, Any]:
        """Attach the pod; returns the CNI 1.0.0 result (without cniVersion)."""
        _validate(call, need_netns=True)
        if not self.store.can_hold(*call.key):
            # Refused before any step: an attachment that cannot be recorded could not be recovered.
            raise CniFailure(ERR_INVALID_ENV, "CNI_CONTAINERID is too long to be recorded",
                             f"{len(call.container_id)} characters")
        with self.pool.cni_call(), self._container_lock(call.container_id):
            with self._lock:
                existing = self._attachments.get(call.key)
            if existing is not None:
                if existing.netns != call.netns:
                    raise CniFailure(ERR_DUPLICATE, f"{call.container_id}/{call.ifname} is already attached",
                                     f"to netns {existing.netns}, not {call.netns}")
                return _result(existing)
            if not self._ready():
                raise CniFailure(ERR_TRY_AGAIN, "the agent is not ready yet",
                                 "waiting for its first sync with Kubernetes and VPP")
            ident = linux.netns_id(call.netns)
            if not ident:
                raise CniFailure(ERR_UNKNOWN_CONTAINER, "the container's network namespace does not exist",
                                 call.netns)
            if ident == linux.own_netns_id():
                raise CniFailure(ERR_INVALID_ENV, "CNI_NETNS is the agent's own network namespace",
                                 f"{call.netns}: refusing to configure the node's namespace as a pod")
            return self._attach(call, ident)

    def _mtu(self, call: CniCall) -> int:
        """The netconf's ``mtu`` if it sets one (the plugin checked its type), else the node's."""
        mtu = call.config.get("mtu")
        if mtu is None:
            return self.mtu
        if not isinstance(mtu, int) or isinstance(mtu, bool) or not 576 <= mtu <= 9216:
            raise CniFailure(ERR_INVALID_CONFIG, "mtu must be an integer in 576..9216", repr(mtu))
        return mtu

    def _attach(self, call: CniCall, netns_ident: str) -> dict[str, Any]:
        undo: list[Callable[[], None]] = []
        t0 = time.perf_counter()
        mtu = self._mtu(call)
        try:
            ips = self._allocate(call.key)
            undo.append(lambda: self.ipam.release(*call.key))
            memif_socket, memif_ips = "", []
            if self._pod_wants_memif(call):
                memif_key = (call.container_id, MEMIF_IFNAME)
                memif_ips = [f"memif:{_host_iface(ip)}" for ip in self._allocate(memif_key)]
                undo.append(lambda: self.ipam.release(*memif_key))
                memif_socket = f"abstract:vppagent/{MEMIF_IFNAME},netns_name={call.netns}"
            host = pod_interface_kind.host_ifname(*call.key)
            vpp_mac = pod_interface_kind.vpp_mac(*call.key)
            pod_mac = ""
            taken = self.pool.take(mtu) if self.driver is Driver.VETH else None
            if taken is not None:
                undo.append(lambda: self._give_back(call.key, taken, adopted=False))
                host, vpp_mac = taken.spare.host_ifname, taken.spare.mac
                undo.append(lambda: linux.delete_host_link(taken.spare.host_ifname))  # the macvlan goes too
                pod_mac = _linux(call, "creating the pod's interface on a spare", lambda: linux.create_macvlan(
                    taken.parent_ifname, call.netns, call.ifname, mtu))
                with self._lock:
                    self._adopt[call.key] = taken.sw_if_index
            elif self.driver is Driver.VETH:
                pod_mac = _linux(call, "creating the veth pair",
                                 lambda: linux.create_veth(host, call.netns, call.ifname, mtu))
                undo.append(lambda: linux.delete_host_link(host))
            else:
                host = call.ifname  # VPP creates the tun in the pod netns under the pod's name
            ns, name = call.pod
            with self._lock:
                pod = self._pods.get(call.pod)
            a = Attachment(call.container_id, call.ifname, call.netns, ns, name,
                           getattr(pod, "uid", "") or "", self.driver, host,
                           tuple(_host_iface(ip) for ip in ips) + tuple(memif_ips),
                           pod_mac, vpp_mac, mtu, memif_socket, netns_ident)
            with self._lock:
                self._attachments[a.key] = a
            undo.append(lambda: self._detach_vpp(a))
            pod_ips = [ip for ip in a.ips if not ip.startswith("memif:")]
            with self._vpp_waiter(self._keys(a), (), "the pod's interface") as vpp_done:
                # A veth pod's side needs nothing from VPP (its MAC is known): it is set up while
                # the reconciler programs VPP. A tun exists only once VPP has made it.
                if self.driver is Driver.VETH:
                    self._configure_pod_side(call, pod_ips, vpp_mac, mtu)
                    vpp_done()
                else:
                    vpp_done()
                    pod_mac = _linux(call, "reading the tun",
                                     lambda: linux.pod_link_mac(call.netns, call.ifname) or "")
                    a = dataclasses.replace(a, pod_mac=pod_mac)  # not part of the tun's VPP objects
                    with self._lock:
                        self._attachments[a.key] = a
                    self._configure_pod_side(call, pod_ips, "", mtu)
            if taken is not None:
                self._give_back(call.key, taken, adopted=True)
            self.store.put(a)
        except BaseException as e:
            for step in reversed(undo):
                try:
                    step()
                except Exception as ue:  # keep undoing: leave as little as possible
                    log.error("rollback step failed", extra={"container": call.container_id, "error": str(ue)})
            if isinstance(e, CniFailure):
                log.warning("ADD failed; rolled back", extra={"container": call.container_id,
                                                              "pod": "/".join(call.pod), "error": str(e)})
            raise
        log.info("pod attached", extra={"container": call.container_id, "pod": "/".join(call.pod),
                                        "ifname": call.ifname, "ips": ",".join(a.ips), "driver": a.driver.value,
                                        "spare": taken is not None,
                                        "total_ms": round((time.perf_counter() - t0) * 1000, 1)})
        return _result(a)

    def _configure_pod_side(self, call: CniCall, ips: list[str], gateway_mac: str, mtu: int) -> None:
        _linux(call, "configuring the pod's interface", lambda: linux.configure_pod_side(
            call.netns, call.ifname, ips, gateway_mac, mtu, gateway4=pod_interface_kind.GATEWAY4, gateway6=pod_interface_kind.GATEWAY6,
            offloads=self.offloads))

    def _give_back(self, key: tuple[str, str], taken: pool.Taken, *, adopted: bool) -> None:
        """The spare an ADD took is the pod's now (``adopted``), or the reconciler deletes it."""
        with self._lock:
            self._adopt.pop(key, None)
        self.pool.release(taken, adopted=adopted)
        if not adopted:
            self._submit()  # the reconciler deletes the spare

    def _allocate(self, key: tuple[str, str]) -> tuple[Any, ...]:
        try:
            return self.ipam.allocate(*key)
        except RangeExhausted as e:
            raise CniFailure(ERR_EXHAUSTED, "no pod address left", str(e)) from e
        except IpamError as e:
            raise CniFailure(ERR_TRY_AGAIN, "cannot allocate a pod address yet", str(e)) from e

    def _detach_vpp(self, a: Attachment) -> None:
        with self._lock:
            self._attachments.pop(a.key, None)
        self._wait_for_vpp({}, self._keys(a), "removing the pod's interface")

    # -- DEL ----------------------------------------------------------------------------------

    def delete(self, call: CniCall) -> None:
        _validate(call, need_netns=False)
        if not self.store.can_hold(*call.key):
            # No ADD of this key can have succeeded (it is refused up front): a DEL of something
            # unknown succeeds, as the CNI spec asks.
            log.info("DEL of an attachment that cannot exist: nothing to do",
                     extra={"container": call.container_id[:64], "ifname": call.ifname})
            return
        with self.pool.cni_call(), self._container_lock(call.container_id):
            with self._lock:
                a = self._attachments.get(call.key)
            if a is not None:
                try:
                    self._detach_vpp(a)
                except CniFailure as e:
                    # Not desired any more: the reconciler removes it when VPP is back.
                    log.warning("DEL continues without VPP confirmation",
                                extra={"container": call.container_id, "error": e.details})
                if a.driver is not Driver.TUN and self._same_netns(a):
                    self._remove_pod_side(a.netns, a.ifname)
                if a.driver is Driver.VETH:
                    linux.delete_host_link(a.host_ifname)
            else:
                # A crash between steps of an ADD can leave a veth or an address without a record.
                linux.delete_host_link(pod_interface_kind.host_ifname(*call.key))
            self.ipam.release(*call.key)
            self.ipam.release(call.container_id, MEMIF_IFNAME)
            self.store.delete(*call.key)
        with self._lock:
            if call.container_id in self._container_locks and not any(
                    k[0] == call.container_id for k in self._attachments):
                self._container_locks.pop(call.container_id, None)
        log.info("pod detached" if a else "DEL of an unknown attachment: nothing to do",
                 extra={"container": call.container_id, "ifname": call.ifname})

    @staticmethod
    def _same_netns(a: Attachment) -> bool:
        """Whether the recorded netns path still names the pod's namespace (never the agent's own)."""
        if not a.netns:
            return False
        ident = linux.netns_id(a.netns)
        if not ident or ident == linux.own_netns_id():
            return False
        return not a.netns_id or ident == a.netns_id

    @staticmethod
    def _remove_pod_side(netns: str, ifname: str) -> None:
        try:
            linux.remove_pod_side(netns, ifname)
        except linux.NetnsGone:
            pass  # the runtime removed the netns first: the pod side went with it

    # -- CHECK ---------------------------------------------------------------------------------

    def check(self, call: CniCall, applied: Callable[[Key], Any]) -> None:
        """``applied(key)`` reads the reconciler's applied state (a snapshot is fine)."""
        _validate(call, need_netns=True)
        with self._lock:
            a = self._attachments.get(call.key)
        if a is None:
            raise CniFailure(ERR_UNKNOWN_CONTAINER, f"{call.container_id}/{call.ifname} is not attached")
        problems = [f"VPP: {k} not programmed" for k, v in self._keys(a).items()
                    if (got := applied(k)) is None or got.value != v]
        try:
            problems += linux.check_pod_side(call.netns, call.ifname,
                                             [ip for ip in a.ips if not ip.startswith("memif:")], a.mtu)
        except linux.NetnsGone:
            problems.append(f"netns {call.netns} is gone")
        if call.prev_result:
            want = {i.get("address") for i in call.prev_result.get("ips", [])}
            have = set(a.ips)
            if want - have:
                problems.append(f"prevResult addresses {sorted(want - have)} are not the pod's")
        if problems:
            raise CniFailure(ERR_CHECK_FAILED, "the pod's network is not as ADD left it", "; ".join(problems))

    # -- GC and STATUS ---------------------------------------------------------------------------

    def gc(self, valid: Collection[tuple[str, str]]) -> list[tuple[str, str]]:
        """Detach everything not in ``valid`` (cni.dev/valid-attachments); returns what was removed."""
        keep = set(valid)
        with self._lock:
            stale = [a for k, a in self._attachments.items() if k not in keep]
        removed = []
        for a in stale:
            self.delete(CniCall(a.container_id, a.netns, a.ifname))
            removed.append(a.key)
        with self._lock:
            live = set(self._attachments)
        memif_keys = {(c, MEMIF_IFNAME) for c, _ in live}
        freed = self.ipam.gc(keep | live | memif_keys)
        if removed or freed:
            log.info("CNI GC", extra={"detached": len(removed), "ips_freed": len(freed)})
        return removed

    def status(self) -> None:
        if not self._ready():
            raise CniFailure(ERR_NOT_AVAILABLE, "the agent is not ready",
                             "waiting for its first sync with Kubernetes and VPP")
        if not self._ranges:
            raise CniFailure(ERR_NOT_AVAILABLE, "this node has no pod CIDR yet",
                             f"Node {self.node_name} has no spec.podCIDRs")

    # -- introspection ------------------------------------------------------------------------------

    def attachments(self) -> list[Attachment]:
        with self._lock:
            return list(self._attachments.values())

    def close(self) -> None:
        self.pool.close()
        self.ipam.close()
        self._rcu.restore()


# -- module helpers ---------------------------------------------------------------------------------


def _choose_driver(driver: str) -> Driver:
    if driver == "tun":
        return Driver.TUN
    if driver == "veth":
        return Driver.VETH
    return Driver.TUN if tap.vhost_net_available() else Driver.VETH


def _host_iface(ip: Any) -> str:
    addr = ipaddress.ip_address(ip)
    return f"{addr}/{addr.max_prefixlen}"


def _memif_annotation_valid(pod: Any) -> bool:
    value = pod.annotations.get(MEMIF_ANNOTATION)
    return value is None or str(value).strip().lower() in ("true", "false")


def _memif_problem(pod: Any) -> Problem:
    """A memif annotation that is neither "true" nor "false": the pod gets no memif, and is told why."""
    value = pod.annotations.get(MEMIF_ANNOTATION)
    return Problem(pod.key, INVALID_MEMIF, f"{pod.key}: annotation {MEMIF_ANNOTATION}={value!r} is not "
                   '"true" or "false"; the pod gets no memif interface')


def _validate(call: CniCall, *, need_netns: bool) -> None:
    if not call.container_id:
        raise CniFailure(ERR_INVALID_ENV, "CNI_CONTAINERID is empty")
    if not call.ifname or len(call.ifname) > 15 or set(call.ifname) - _IFNAME_OK or call.ifname in (".", ".."):
        raise CniFailure(ERR_INVALID_ENV, "CNI_IFNAME is not a valid interface name", repr(call.ifname))
    if call.ifname == MEMIF_IFNAME:
        raise CniFailure(ERR_INVALID_ENV, f"CNI_IFNAME {MEMIF_IFNAME} is reserved for the memif interface")
    if need_netns and not call.netns:
        raise CniFailure(ERR_INVALID_ENV, "CNI_NETNS is empty")
    if need_netns and not call.netns.startswith("/"):
        raise CniFailure(ERR_INVALID_ENV, "CNI_NETNS must be an absolute path", call.netns)


def _linux(call: CniCall, what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except linux.NetnsGone as e:
        raise CniFailure(ERR_UNKNOWN_CONTAINER, "the container's network namespace is gone", str(e)) from e
    except linux.LinuxNetError as e:
        raise CniFailure(ERR_IO, f"failed {what}", str(e)) from e


def _result(a: Attachment) -> dict[str, Any]:
    interfaces: list[dict[str, Any]] = [{"name": a.ifname, "sandbox": a.netns}]
    if a.pod_mac:
        interfaces[0]["mac"] = a.pod_mac
    if a.driver is Driver.VETH:
        interfaces.insert(0, {"name": a.host_ifname})
    idx = len(interfaces) - 1
    ips: list[dict[str, Any]] = []
    routes: list[dict[str, Any]] = []
    for ip in a.ips:
        if ip.startswith("memif:"):
            continue
        v4 = ipaddress.ip_interface(ip).version == 4
        ips.append({"interface": idx, "address": ip,
                    "gateway": pod_interface_kind.GATEWAY4 if v4 else pod_interface_kind.GATEWAY6})
        routes.append({"dst": "0.0.0.0/0" if v4 else "::/0",
                       "gw": pod_interface_kind.GATEWAY4 if v4 else pod_interface_kind.GATEWAY6})
    if a.memif_socket:
        interfaces.append({"name": MEMIF_IFNAME, "sandbox": a.netns,
                           "socketPath": a.memif_socket.split(",")[0]})
        for ip in a.ips:
            if ip.startswith("memif:"):
                ips.append({"interface": len(interfaces) - 1, "address": ip.removeprefix("memif:")})
    return {"interfaces": interfaces, "ips": ips, "routes": routes, "dns": {}}


__all__ = ["CniCall", "CniFailure", "PodNetwork", "parse_cni_args"]
