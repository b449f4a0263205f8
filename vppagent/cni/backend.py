"""The CNI backend: what ADD, DEL, CHECK, GC and STATUS do on the node.

Owns: the CNI verbs and their error codes, the pod's Linux side
(``linux.py``) and the order of the steps of an ADD. The state the verbs
change (attachments, IPAM, the attachment records, the spare pool) belongs
to the ``pods`` feature (``pods.py``); a verb never talks to VPP itself. It
changes the feature's attachments, which asks the agent loop to recompute,
and waits until the reconciler thread reports the pod's objects applied or
failed. So the one-writer rule for VPP holds, and a pod attached while VPP
restarts is re-programmed like everything else.

Concurrency: calls arrive on gRPC worker threads. Calls for one container
are serialised by a per-container lock; different containers proceed in
parallel. ``self._lock`` guards only the lock table.

Failure behaviour: an ADD that fails at any step undoes what it did, in
reverse (VPP objects, veth, IP), before it answers; DEL is idempotent and
succeeds for unknown containers and vanished netns, as the spec says.

Must not touch: VPP (only through the feature's attachments), Kubernetes.
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
from typing import Any

from vppagent.cni import linux, pod_interface_kind
from vppagent.cni.ipam import IpamError, RangeExhausted
from vppagent.cni.pods import MEMIF_ANNOTATION, MEMIF_IFNAME, NotProgrammed, PodNetwork
from vppagent.model.podnet import Attachment, Driver
from vppagent.reconcile import Key

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


class CniBackend:
    """The CNI verbs over the ``pods`` feature's state; ``ready()`` says whether the agent has
    synced with Kubernetes and VPP (an ADD before that could not be programmed)."""

    def __init__(self, pods: PodNetwork, *, ready: Callable[[], bool] = lambda: True):
        self.pods = pods
        self._ready = ready
        self._lock = threading.Lock()
        self._container_locks: dict[str, threading.Lock] = {}

    @contextmanager
    def _step(self, name: str) -> Iterator[None]:
        """One change outside the agent's memory, with its crash points (vppagent/crash.py)."""
        self.pods.crash.reached(f"cni:{name}:before")
        yield
        self.pods.crash.reached(f"cni:{name}:after")

    def _container_lock(self, container_id: str) -> threading.Lock:
        with self._lock:
            return self._container_locks.setdefault(container_id, threading.Lock())

    @contextmanager
    def _programmed(self, present: Mapping[Key, Any], absent: Collection[Key],
                    what: str) -> Iterator[Callable[[], None]]:
        """The feature's waiter, its outcome told as a CNI error."""
        with self.pods.vpp_waiter(present, absent, what) as wait:
            def cni_wait() -> None:
                try:
                    wait()
                except NotProgrammed as e:
                    raise CniFailure(ERR_VPP_REFUSED if e.refused else ERR_TRY_AGAIN, str(e), e.details) from e
            yield cni_wait

    # -- ADD ----------------------------------------------------------------------------------

    def add(self, call: CniCall) -> dict[str, Any]:
        """Attach the pod; returns the CNI 1.0.0 result (without cniVersion)."""
        _validate(call, need_netns=True)
        if not self.pods.store.can_hold(*call.key):
            # Refused before any step: an attachment that cannot be recorded could not be recovered.
            raise CniFailure(ERR_INVALID_ENV, "CNI_CONTAINERID is too long to be recorded",
                             f"{len(call.container_id)} characters")
        with self.pods.pool.cni_call(), self._container_lock(call.container_id):
            existing = self.pods.attachment(call.key)
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
            return self.pods.mtu
        if not isinstance(mtu, int) or isinstance(mtu, bool) or not 576 <= mtu <= 9216:
            raise CniFailure(ERR_INVALID_CONFIG, "mtu must be an integer in 576..9216", repr(mtu))
        return mtu

    def _wants_memif(self, call: CniCall) -> bool:
        pod = self.pods.pod(call.pod)
        return bool(pod is not None and str(pod.annotations.get(MEMIF_ANNOTATION, "")).strip().lower() == "true")

    def _attach(self, call: CniCall, netns_ident: str) -> dict[str, Any]:
        pods = self.pods
        undo: list[Callable[[], None]] = []
        t0 = time.perf_counter()
        mtu = self._mtu(call)
        try:
            ips = self._allocate(call.key)
            undo.append(lambda: pods.ipam.release(*call.key))
            memif_socket, memif_ips = "", []
            if self._wants_memif(call):
                memif_key = (call.container_id, MEMIF_IFNAME)
                memif_ips = [f"memif:{_host_iface(ip)}" for ip in self._allocate(memif_key)]
                undo.append(lambda: pods.ipam.release(*memif_key))
                memif_socket = pod_interface_kind.memif_socket(MEMIF_IFNAME, call.netns)
            host = pod_interface_kind.host_ifname(*call.key)
            vpp_mac = pod_interface_kind.vpp_mac(*call.key)
            pod_mac = ""
            taken = pods.pool.take(mtu) if pods.driver is Driver.VETH else None
            if taken is not None:
                undo.append(lambda: pods.give_back(call.key, taken, adopted=False))
                host, vpp_mac = taken.spare.host_ifname, taken.spare.mac
                undo.append(lambda: linux.delete_host_link(taken.spare.host_ifname))  # the macvlan goes too
                with self._step("macvlan"):
                    pod_mac = _linux(call, "creating the pod's interface on a spare", lambda: linux.create_macvlan(
                        taken.parent_ifname, call.netns, call.ifname, mtu))
                pods.adopting(call.key, taken.sw_if_index)
            elif pods.driver is Driver.VETH:
                with self._step("veth"):
                    pod_mac = _linux(call, "creating the veth pair",
                                     lambda: linux.create_veth(host, call.netns, call.ifname, mtu))
                undo.append(lambda: linux.delete_host_link(host))
            else:
                host = call.ifname  # VPP creates the tun in the pod netns under the pod's name
            ns, name = call.pod
            pod = pods.pod(call.pod)
            a = Attachment(call.container_id, call.ifname, call.netns, ns, name,
                           getattr(pod, "uid", "") or "", pods.driver, host,
                           tuple(_host_iface(ip) for ip in ips) + tuple(memif_ips),
                           pod_mac, vpp_mac, mtu, memif_socket, netns_ident)
            pods.record(a)
            undo.append(lambda: self._detach_vpp(a))
            pod_ips = [ip for ip in a.ips if not ip.startswith("memif:")]
            with self._programmed(pods.keys(a), (), "the pod's interface") as vpp_done:
                # A veth pod's side needs nothing from VPP (its MAC is known): it is set up while
                # the reconciler programs VPP. A tun exists only once VPP has made it.
                if pods.driver is Driver.VETH:
                    self._configure_pod_side(call, pod_ips, vpp_mac, mtu)
                    vpp_done()
                else:
                    vpp_done()
                    pod_mac = _linux(call, "reading the tun",
                                     lambda: linux.pod_link_mac(call.netns, call.ifname) or "")
                    a = dataclasses.replace(a, pod_mac=pod_mac)  # not part of the tun's VPP objects
                    pods.record(a)
                    self._configure_pod_side(call, pod_ips, "", mtu)
            if taken is not None:
                pods.give_back(call.key, taken, adopted=True)
            with self._step("record"):
                pods.store.put(a)
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
        with self._step("pod-side"):
            _linux(call, "configuring the pod's interface", lambda: linux.configure_pod_side(
                call.netns, call.ifname, ips, gateway_mac, mtu, gateway4=pod_interface_kind.GATEWAY4,
                gateway6=pod_interface_kind.GATEWAY6, offloads=self.pods.offloads))

    def _allocate(self, key: tuple[str, str]) -> tuple[Any, ...]:
        try:
            with self._step("ipam-allocate"):
                return self.pods.ipam.allocate(*key)
        except RangeExhausted as e:
            raise CniFailure(ERR_EXHAUSTED, "no pod address left", str(e)) from e
        except IpamError as e:
            raise CniFailure(ERR_TRY_AGAIN, "cannot allocate a pod address yet", str(e)) from e

    def _detach_vpp(self, a: Attachment) -> None:
        self.pods.forget(a.key)
        with self._programmed({}, self.pods.keys(a), "removing the pod's interface") as wait:
            wait()

    # -- DEL ----------------------------------------------------------------------------------

    def delete(self, call: CniCall) -> None:
        _validate(call, need_netns=False)
        pods = self.pods
        if not pods.store.can_hold(*call.key):
            # No ADD of this key can have succeeded (it is refused up front): a DEL of something
            # unknown succeeds, as the CNI spec asks.
            log.info("DEL of an attachment that cannot exist: nothing to do",
                     extra={"container": call.container_id[:64], "ifname": call.ifname})
            return
        with pods.pool.cni_call(), self._container_lock(call.container_id):
            a = pods.attachment(call.key)
            if a is not None:
                try:
                    self._detach_vpp(a)
                except CniFailure as e:
                    # Not desired any more: the reconciler removes it when VPP is back.
                    log.warning("DEL continues without VPP confirmation",
                                extra={"container": call.container_id, "error": e.details})
                if a.driver is not Driver.TUN and _same_netns(a):
                    with self._step("pod-side-remove"):
                        _remove_pod_side(a.netns, a.ifname)
                if a.driver is Driver.VETH:
                    with self._step("veth-delete"):
                        linux.delete_host_link(a.host_ifname)
            else:
                # A crash between steps of an ADD can leave a veth or an address without a record.
                with self._step("veth-delete"):
                    linux.delete_host_link(pod_interface_kind.host_ifname(*call.key))
            with self._step("ipam-release"):
                pods.ipam.release(*call.key)
                pods.ipam.release(call.container_id, MEMIF_IFNAME)
            with self._step("record-delete"):
                pods.store.delete(*call.key)
        live = {c for c, _ in pods.attachment_keys()}
        with self._lock:
            if call.container_id not in live:
                self._container_locks.pop(call.container_id, None)
        log.info("pod detached" if a else "DEL of an unknown attachment: nothing to do",
                 extra={"container": call.container_id, "ifname": call.ifname})

    # -- CHECK ---------------------------------------------------------------------------------

    def check(self, call: CniCall, applied: Callable[[Key], Any]) -> None:
        """``applied(key)`` reads the reconciler's applied state (a snapshot is fine)."""
        _validate(call, need_netns=True)
        a = self.pods.attachment(call.key)
        if a is None:
            raise CniFailure(ERR_UNKNOWN_CONTAINER, f"{call.container_id}/{call.ifname} is not attached")
        problems = [f"VPP: {k} not programmed" for k, v in self.pods.keys(a).items()
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
        stale = [a for a in self.pods.attachments() if a.key not in keep]
        removed = []
        for a in stale:
            self.delete(CniCall(a.container_id, a.netns, a.ifname))
            removed.append(a.key)
        live = self.pods.attachment_keys()
        memif_keys = {(c, MEMIF_IFNAME) for c, _ in live}
        freed = self.pods.ipam.gc(keep | live | memif_keys)
        if removed or freed:
            log.info("CNI GC", extra={"detached": len(removed), "ips_freed": len(freed)})
        return removed

    def status(self) -> None:
        if not self._ready():
            raise CniFailure(ERR_NOT_AVAILABLE, "the agent is not ready",
                             "waiting for its first sync with Kubernetes and VPP")
        if not self.pods.ranges:
            raise CniFailure(ERR_NOT_AVAILABLE, "this node has no pod CIDR yet",
                             f"Node {self.pods.node_name} has no spec.podCIDRs")


# -- module helpers ---------------------------------------------------------------------------------


def _same_netns(a: Attachment) -> bool:
    """Whether the recorded netns path still names the pod's namespace (never the agent's own)."""
    if not a.netns:
        return False
    ident = linux.netns_id(a.netns)
    if not ident or ident == linux.own_netns_id():
        return False
    return not a.netns_id or ident == a.netns_id


def _remove_pod_side(netns: str, ifname: str) -> None:
    try:
        linux.remove_pod_side(netns, ifname)
    except linux.NetnsGone:
        pass  # the runtime removed the netns first: the pod side went with it


def _host_iface(ip: Any) -> str:
    addr = ipaddress.ip_address(ip)
    return f"{addr}/{addr.max_prefixlen}"


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
        gateway = pod_interface_kind.GATEWAY4 if v4 else pod_interface_kind.GATEWAY6
        ips.append({"interface": idx, "address": ip, "gateway": gateway})
        routes.append({"dst": "0.0.0.0/0" if v4 else "::/0", "gw": gateway})
    if a.memif_socket:
        interfaces.append({"name": MEMIF_IFNAME, "sandbox": a.netns,
                           "socketPath": a.memif_socket.split(",")[0]})
        for ip in a.ips:
            if ip.startswith("memif:"):
                ips.append({"interface": len(interfaces) - 1, "address": ip.removeprefix("memif:")})
    return {"interfaces": interfaces, "ips": ips, "routes": routes, "dns": {}}


__all__ = ["CniBackend", "CniCall", "CniFailure", "parse_cni_args"]
