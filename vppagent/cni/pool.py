"""Spare veth + af_packet pod interfaces, made before pods ask for them.

Why: VPP attaches an af_packet socket in 40-60 ms, almost all of it in the
kernel waiting for RCU grace periods (ring setup, bind and close each call
``synchronize_net``), and VPP's main thread answers no API call meanwhile.
That is most of a pod ADD. A spare is a veth pair in the agent's namespace:
VPP has already attached one end (``vpw…``, tagged ``vppagent:spare:<name>``,
admin down); the other (``vpx…``) is up, without addresses. An ADD that
finds one creates the pod's interface as a macvlan on ``vpx…`` directly in
the pod's namespace (one netlink request, about 2 ms: moving a veth end
into a namespace instead waits for RCU, 15-30 ms measured), and hands the
VPP interface to the pod: the pod-interface kind re-tags and configures it
instead of attaching anew. The pod's frames go macvlan -> vpx -> vpw -> VPP.

Filling: a thread makes one spare at a time, only while no CNI call is under
way and after the CNI has been idle for ``idle_s``, because making one blocks
VPP's API for the duration: a refill never delays an ADD by more than one
attach. Spares are not kept
across agent restarts: recovery deletes their veths (``spare_links``) and
the reconciler deletes their VPP interfaces (not desired any more).

Owns: ``SparePool`` (spares, filling, take, hand-over bookkeeping) and the
af_packet set-up that spares and pod interfaces share (rings, base config);
the ``pod-spare`` reconciler kind is ``spare_kind``'s. Must not: choose drivers, touch a pod's
namespace beyond the move (``pods.py`` configures it), talk to VPP except
through the kind.
"""
from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from vppagent.crash import NONE as NO_CRASH, CrashPoints
from vppagent.cni import linux
from vppagent.reconcile import Intent, Key
from vppagent.services import snat_kind
from vppagent.vpp import af_packet, features, interfaces
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppApiError

log = logging.getLogger(__name__)

KIND = "pod-spare"
TAG_PREFIX = "vppagent:spare:"
HOST_IFNAME = re.compile(r"vpw[0-9a-f]{12}")    # the end VPP attaches
SPARE_IFNAME = re.compile(r"vpx[0-9a-f]{12}")   # the end the pod's macvlan sits on
AF_PACKET_FLAGS = af_packet.Flags.QDISC_BYPASS | af_packet.Flags.CKSUM_GSO
RX_RING_BYTES = 2 << 20  # V2: 1024 frames of 2 KB (V3's default is 160 blocks of 64 KB)
# A 64 KB GSO frame, its vnet header and the tpacket header (VPP's own default frame for GSO):
# the V2 RX frame of pods that keep their offloads. 32 of them fill RX_RING_BYTES.
GSO_FRAME = 2048 * 33


def frame_size(mtu: int) -> int:
    """The af_packet frame for ``mtu``: 2048 unless jumbo frames need more (VPP's default otherwise)."""
    size = 2048
    while size < mtu + 256:  # L2 header, VLAN, tpacket header, alignment
        size *= 2
    return size


@dataclass(frozen=True)
class Rings:
    """The af_packet ring version and geometry of pod interfaces (config ``pod_af_packet_version``).

    V2 by default: a V3 RX ring arms a kernel block-retire timer of 1 ms per socket
    (VPP fixes it): with 150 pods the idle node spent 8% of its CPU in timers, VPP's
    API round trip took 3-5x longer and an af_packet create 60% longer, and pod ADDs
    slowed with every pod added (``perf/afpacket_scale.py``). V2 has no timer, and
    none of that grows with the pods; it has no batching either:
    single-stream TCP between two pods is about 40% slower, small-packet UDP faster.
    V2 frames are fixed-size, so the RX ring is sized for the largest frame: the MTU,
    or a 64 KB GSO frame when the pods keep their offloads (``gso``). Either way the RX
    ring holds about RX_RING_BYTES (1024 x 2 KB, or 32 x 66 KB: the same bytes in flight).
    """

    version: int = 2
    tx_frames_per_block: int = 64  # VPP's default TX ring is 1024 frames of 66 KB
    gso: bool = False

    def create_args(self, mtu: int) -> dict[str, Any]:
        frame = max(frame_size(mtu), GSO_FRAME) if self.gso else frame_size(mtu)
        args: dict[str, Any] = {"flags": AF_PACKET_FLAGS, "tx_frames_per_block": self.tx_frames_per_block,
                                "tx_frame_size": frame if frame > 2048 * 33 else 0}
        if self.version == 2:
            args.update(flags=AF_PACKET_FLAGS | af_packet.Flags.VERSION_2, rx_frame_size=frame,
                        rx_frames_per_block=max(32 if self.gso else 256, RX_RING_BYTES // frame))
        return args


def attach_af_packet(vpp: VppClient, host_ifname: str, mac: str, mtu: int, rings: Rings) -> int:
    """Attach a pod veth's host end with rings sized for a pod."""
    return af_packet.create(vpp, host_ifname, mac=mac, **rings.create_args(mtu))


@dataclass(frozen=True)
class BaseConfig:
    """What a pod interface has before it knows its pod: MTU, table, the gateway loopback
    it borrows its address from (its sw_if_index), cnat (and SNAT maps), and the kpod
    plugin's IPv4 GSO fix-up for pods that keep their offloads."""

    mtu: int
    table_id: int
    gateway: int | None
    cnat: bool
    snat: bool
    gso_fix: bool = False


def base_dependencies(gateway: Key | None, with_snat: bool) -> list[Key]:
    """What ``base_config`` needs applied first: the gateway loopback, the SNAT entry (for its maps)."""
    deps = [gateway] if gateway is not None else []
    if with_snat:
        deps.append(Key(snat_kind.KIND, "default"))
    return deps


def enable_gso_fix(vpp: VppClient, sw_if_index: int) -> None:
    """kpod's fix-up of the IPv4 GSO frames af_packet hands VPP (docs/upstream-vpp-af-packet-offloads.md).

    A VPP without our kpod plugin refuses it: the pod still works, and its IPv4 traffic is
    right wherever VPP passes the GSO frame on whole (pod to pod, an af_packet uplink), but
    not where VPP segments it itself (tunnels): said once per interface, in the log.
    """
    if not features.enable_if_loaded(vpp, sw_if_index, *features.KPOD_GSO_FIX):
        log.warning("kpod plugin not loaded: IPv4 GSO frames this pod sends are corrupted where VPP "
                    "segments them (tunnels, an uplink without GSO); load kpod_plugin.so or set "
                    "pod_offloads false", extra={"sw_if_index": sw_if_index})


def base_config(vpp: VppClient, sw_if_index: int, c: BaseConfig) -> None:
    interfaces.set_mtu(vpp, sw_if_index, c.mtu)
    interfaces.set_l3(vpp, sw_if_index, table_id=c.table_id, borrow_from=c.gateway)
    if c.cnat:
        snat_kind.attach_interface(vpp, sw_if_index, snat_kind.InterfaceRole.POD, snat=c.snat)
    if c.gso_fix:
        enable_gso_fix(vpp, sw_if_index)
    # Hundreds of polled pod interfaces would keep VPP's main thread busy
    # polling idle rings; interrupt mode costs latency only under load.
    try:
        interfaces.set_rx_mode(vpp, sw_if_index, interfaces.RxMode.INTERRUPT)
    except VppApiError as e:
        log.debug("interrupt mode refused; polling", extra={"sw_if_index": sw_if_index, "error": str(e)})
    place_on_owner(vpp, sw_if_index)


def place_on_owner(vpp: VppClient, sw_if_index: int) -> None:
    """With worker threads, poll the interface on the worker that owns its connection state.

    kpol and ksvc keep a pod interface's flows and sessions on worker ``sw_if_index % workers``
    (``vpp_plugins/common/kp_owner.h``) and hand packets that arrive on another thread to it.
    VPP spreads queues over the workers round robin, so without this about half the pods'
    packets would cross threads on input. Asked of VPP each time: a restarted VPP may have
    another worker count.
    """
    workers = interfaces.worker_count(vpp)
    if not workers:
        return
    try:
        interfaces.place_rx(vpp, sw_if_index, sw_if_index % workers)
    except VppApiError as e:
        # memif registers its queues when the peer connects: VPP places them then.
        log.info("rx placement refused; VPP's placement kept", extra={"sw_if_index": sw_if_index, "error": str(e)})


@dataclass(frozen=True)
class Spare:
    """One spare as the reconciler sees it: the veth host end VPP attaches, VPP's MAC, the MTU,
    and the base configuration of the pods it is for (made ahead: fewer calls at ADD)."""

    host_ifname: str
    mac: str
    mtu: int
    # Not read back (spares are never adopted across restarts): no part in equality.
    table_id: int = field(default=0, compare=False)
    gateway: Key | None = field(default=None, compare=False)
    cnat: bool = field(default=False, compare=False)
    snat: bool = field(default=False, compare=False)
    gso_fix: bool = field(default=False, compare=False)

    @property
    def key(self) -> Key:
        return Key(KIND, self.host_ifname)


@dataclass(frozen=True)
class Taken:
    """A spare handed to a pod: its VPP interface, and the link the pod's macvlan sits on."""

    spare: Spare
    sw_if_index: int

    @property
    def parent_ifname(self) -> str:
        return parent_of(self.spare.host_ifname)


class SparePool:
    """Spares for ``mtu``-sized veth pods; ``size`` 0 disables the pool."""

    def __init__(self, *, size: int, mtu: int, submit: Callable[[], None], idle_s: float = 0.01,
                 template: Spare | None = None, offloads: bool = False, crash: CrashPoints = NO_CRASH):
        """``template``: the base configuration spares get (its name and MAC are ignored);
        ``offloads``: the pods' macvlans keep their TCP offloads (their parent's)."""
        self.size = size
        self.mtu = mtu
        self.offloads = offloads
        self._template = template or Spare("", "", mtu)
        self.idle_s = idle_s
        self._submit = submit
        self._crash = crash
        self._lock = threading.Lock()
        self._pending: dict[str, Spare] = {}            # host ifname -> spare, VPP not done yet
        self._ready: dict[str, tuple[Spare, int]] = {}  # host ifname -> (spare, sw_if_index)
        # Taken by an ADD in progress: still desired, so that a failed ADD leaves
        # the reconciler to delete it (``release``) and a resync finds it owned.
        self._taken: dict[str, Spare] = {}
        self._handed_over: set[str] = set()  # released to a pod: deleting the intent must not touch VPP
        self._last_activity = 0.0
        self._in_flight = 0  # CNI calls under way: no spare is made meanwhile
        self._failures = 0
        self._not_before = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- filling (its own thread) ---------------------------------------------------------

    def start(self) -> None:
        if self.size > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pod-spares", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.idle_s)
            self._wake.clear()
            if self._should_fill():
                self._fill_one()

    def _should_fill(self) -> bool:
        now = time.monotonic()
        with self._lock:
            return (not self._pending and not self._in_flight and len(self._ready) < self.size
                    and now >= self._not_before and now - self._last_activity >= self.idle_s)

    def _fill_one(self) -> None:
        suffix = secrets.token_hex(6)
        host, spare_name = f"vpw{suffix}", f"vpx{suffix}"
        self._crash.reached("cni:spare-veth:before")
        try:
            linux.create_spare_veth(host, spare_name, self.mtu, self.offloads)
        except linux.LinuxNetError as e:
            self._backoff("cannot create a spare veth", str(e))
            return
        self._crash.reached("cni:spare-veth:after")
        spare = dataclasses.replace(self._template, host_ifname=host, mac=_spare_mac(host), mtu=self.mtu)
        with self._lock:
            self._pending[host] = spare
        self._submit()

    def _backoff(self, what: str, error: str) -> None:
        self._failures += 1
        delay = min(60.0, 0.5 * 2 ** min(self._failures - 1, 7))
        with self._lock:
            self._not_before = time.monotonic() + delay
        log.warning(what, extra={"error": error, "retry_in_s": delay})

    # -- the reconciler thread --------------------------------------------------------------

    def intents(self) -> list[Intent]:
        with self._lock:
            spares = (list(self._pending.values()) + [r[0] for r in self._ready.values()]
                      + list(self._taken.values()))
        return [Intent(KIND, s) for s in spares]

    def settle(self, applied: Mapping[Key, Any], failures: Mapping[Key, Any]) -> None:
        """Pending spares that VPP now holds become ready; refused ones are dropped."""
        with self._lock:
            pending = list(self._pending.items())
        for host, spare in pending:
            a = applied.get(spare.key)
            if a is not None and a.value == spare:
                with self._lock:
                    if self._pending.pop(host, None) is not None:
                        self._ready[host] = (spare, a.handle)
                        self._failures = 0
                self._wake.set()
            elif spare.key in failures:
                with self._lock:
                    self._pending.pop(host, None)
                linux.delete_host_link(host)
                self._backoff("VPP refused a spare pod interface", str(failures[spare.key].error))
                self._submit()

    def handed_over(self, host_ifname: str) -> bool:
        """Whether the spare's VPP interface now belongs to a pod (consumes the mark)."""
        with self._lock:
            if host_ifname in self._handed_over:
                self._handed_over.discard(host_ifname)
                return True
            return False

    # -- CNI threads ------------------------------------------------------------------------------

    @contextmanager
    def cni_call(self) -> Iterator[None]:
        """Around each CNI call: spares are made only between calls (making one blocks VPP's API)."""
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._last_activity = time.monotonic()
            self._wake.set()

    def take(self, mtu: int) -> Taken | None:
        """A ready spare for an ``mtu`` pod, or None (the caller makes an interface the slow way)."""
        with self._lock:
            if mtu != self.mtu or not self._ready:
                return None
            host, (spare, sw_if_index) = self._ready.popitem()
            self._taken[host] = spare
        self._wake.set()
        return Taken(spare, sw_if_index)

    def release(self, taken: Taken, *, adopted: bool) -> None:
        """The ADD that took ``taken`` is over: its VPP interface is the pod's (``adopted``),
        or the ADD failed and the reconciler deletes the spare. Takes effect at the next recompute."""
        host = taken.spare.host_ifname
        with self._lock:
            if self._taken.pop(host, None) is not None and adopted:
                self._handed_over.add(host)

    def counts(self) -> tuple[int, int]:
        """(ready, being made)."""
        with self._lock:
            return len(self._ready), len(self._pending)


def parent_of(host_ifname: str) -> str:
    """The veth end a spare's pod macvlan sits on, from the end VPP attaches."""
    return "vpx" + host_ifname[3:]


def _spare_mac(host_ifname: str) -> str:
    """VPP's MAC on a spare: locally administered, from the name (which is random)."""
    h = host_ifname[3:]
    return "02:fd:" + ":".join(h[i:i + 2] for i in range(0, 8, 2))


def spare_links() -> list[str]:
    """Both ends of spare veths in this namespace (for recovery after a restart)."""
    return linux.host_links(HOST_IFNAME) + linux.host_links(SPARE_IFNAME)


__all__ = ["HOST_IFNAME", "KIND", "Rings", "SPARE_IFNAME", "Spare", "SparePool", "TAG_PREFIX",
           "Taken", "attach_af_packet", "frame_size", "parent_of", "spare_links"]
