"""Pod address management for this node's pod CIDRs (Node.spec.podCIDRs).

Owns: ``<state_dir>/ipam/`` — ``snapshot.json`` (atomic), ``journal.jsonl``
(one JSON record per change, fdatasync'd before the call returns) and
``lock`` (flock: one agent per state directory). Opening replays the journal
on top of the snapshot, so an address handed out is never handed out twice,
even across a crash. Must not touch: the network, VPP, the attachment store.

Rules: one range per address family; per range the network address, the
IPv4 broadcast and the first host (the node's own) are never assigned;
assignment is round-robin from the address after the last one assigned, so a
freed address is not reused at once. Only the assigned set and a cursor are
kept, never the whole range (a /64 is fine).
"""
from __future__ import annotations

import fcntl
import ipaddress
import json
import logging
import os
import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

from vppagent.atomic import CorruptFile, private_dir, read_json, write_json
from vppagent.iptypes import IpAddress as IP
from vppagent.iptypes import IpNetwork as Net

log = logging.getLogger(__name__)

Key = tuple[str, str]

SNAPSHOT_VERSION = 1
DEFAULT_SNAPSHOT_EVERY = 256


class IpamError(Exception):
    """Base IPAM error; carries the key and range involved, when there is one."""

    def __init__(self, message: str, *, key: Key | None = None, range: Net | None = None,
                 path: Path | None = None):
        super().__init__(message)
        self.key = key
        self.range = range
        self.path = path


class RangeExhausted(IpamError):
    def __init__(self, range: Net, size: int, key: Key):
        super().__init__(
            f"pod CIDR {range} is exhausted: all {size} assignable addresses are in use "
            f"(network address, first host and IPv4 broadcast are reserved); "
            f"cannot allocate for container {key[0]} interface {key[1]}",
            key=key, range=range)
        self.size = size


class IpamStateError(IpamError):
    """The state directory is in use by another process, or its files are damaged."""


def assignable_bounds(net: Net) -> tuple[int, int]:
    """First and last assignable address of ``net`` as integers (first > last: none)."""
    first = int(net.network_address) + 2           # skip the network address and the node's
    last = int(net.broadcast_address)
    if net.version == 4:
        last -= 1                                   # IPv4 broadcast
    return first, last


def assignable_count(net: Net) -> int:
    first, last = assignable_bounds(net)
    return max(0, last - first + 1)


@dataclass
class _State:
    seq: int = 0
    ranges: tuple[Net, ...] = ()
    cursors: dict[Net, int] = field(default_factory=dict)   # last address assigned, per range
    allocations: dict[Key, tuple[IP, ...]] = field(default_factory=dict)
    owners: dict[IP, Key] = field(default_factory=dict)     # reverse index of allocations

    def apply(self, rec: dict[str, Any]) -> None:
        """Apply one journal record. Records are assignments, so re-applying is harmless."""
        op = rec["op"]
        if op == "ranges":
            self.ranges = tuple(ipaddress.ip_network(c) for c in rec["cidrs"])
        elif op == "alloc":
            key = (rec["key"][0], rec["key"][1])
            self._drop(key)
            ips = tuple(ipaddress.ip_address(i) for i in rec["ips"])
            self.allocations[key] = ips
            for ip in ips:
                self.owners[ip] = key
                for net in self.ranges:
                    if ip in net:
                        self.cursors[net] = int(ip)
        elif op == "free":
            self._drop((rec["key"][0], rec["key"][1]))
        else:
            raise ValueError(f"unknown journal op {op!r}")
        self.seq = rec["seq"]

    def _drop(self, key: Key) -> None:
        for ip in self.allocations.pop(key, ()):
            if self.owners.get(ip) == key:
                del self.owners[ip]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION,
            "seq": self.seq,
            "ranges": [str(n) for n in self.ranges],
            "cursors": {str(n): str(ipaddress.ip_address(c)) for n, c in self.cursors.items()},
            "allocations": [{"key": list(k), "ips": [str(i) for i in v]}
                            for k, v in sorted(self.allocations.items())],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "_State":
        if d.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported snapshot version {d.get('version')!r}")
        st = cls(seq=int(d["seq"]), ranges=tuple(ipaddress.ip_network(c) for c in d["ranges"]))
        st.cursors = {ipaddress.ip_network(n): int(ipaddress.ip_address(c))
                      for n, c in d["cursors"].items()}
        for a in d["allocations"]:
            key = (str(a["key"][0]), str(a["key"][1]))
            ips = tuple(ipaddress.ip_address(i) for i in a["ips"])
            st.allocations[key] = ips
            for ip in ips:
                st.owners[ip] = key
        return st


def _check_key(container_id: str, ifname: str) -> Key:
    if not isinstance(container_id, str) or not container_id:
        raise IpamError(f"container id must be a non-empty string, got {container_id!r}")
    if not isinstance(ifname, str) or not ifname:
        raise IpamError(f"interface name must be a non-empty string, got {ifname!r}",
                        key=(str(container_id), str(ifname)))
    return (container_id, ifname)


class Ipam:
    def __init__(self, state_dir: Path, snapshot_every: int = DEFAULT_SNAPSHOT_EVERY):
        self.dir = Path(state_dir) / "ipam"
        self.snapshot_path = self.dir / "snapshot.json"
        self.journal_path = self.dir / "journal.jsonl"
        self._snapshot_every = max(1, snapshot_every)
        self._lock = threading.Lock()
        self._since_snapshot = 0
        private_dir(Path(state_dir))
        private_dir(self.dir)
        self._lock_fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._journal_fd = -1
        try:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IpamStateError(f"IPAM state {self.dir} is in use by another process",
                                     path=self.dir) from None
            for stale in self.dir.glob(".*.tmp"):    # an atomic write cut short by a crash
                stale.unlink(missing_ok=True)
            self._state = self._recover()
            self._journal_fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                                       0o600)
            # Compacting at once drops any torn tail, so later appends start on a clean line.
            self._compact()
        except BaseException:
            self.close()
            raise
        log.info("IPAM state loaded", extra={
            "state_dir": str(self.dir), "ranges": [str(r) for r in self._state.ranges],
            "allocations": len(self._state.allocations)})

    # --- public API -------------------------------------------------------

    def set_ranges(self, cidrs: Sequence[Net | str]) -> None:
        nets: list[Net] = []
        for c in cidrs:
            try:
                net = c if isinstance(c, (IPv4Network, IPv6Network)) else ipaddress.ip_network(c)
            except (TypeError, ValueError) as e:
                raise IpamError(f"invalid pod CIDR {c!r}: {e}") from None
            if any(n.version == net.version for n in nets):
                raise IpamError(f"more than one IPv{net.version} pod CIDR given: "
                                f"{[str(x) for x in cidrs]}", range=net)
            nets.append(net)
        with self._lock:
            if tuple(nets) == self._state.ranges:
                return
            self._commit([{"op": "ranges", "cidrs": [str(n) for n in nets]}])
        log.info("pod CIDRs set", extra={"ranges": [str(n) for n in nets]})

    @property
    def ranges(self) -> tuple[Net, ...]:
        with self._lock:
            return self._state.ranges

    def allocate(self, container_id: str, ifname: str) -> tuple[IP, ...]:
        key = _check_key(container_id, ifname)
        with self._lock:
            st = self._state
            if key in st.allocations:
                return st.allocations[key]
            if not st.ranges:
                raise IpamError(f"no pod CIDR known yet (the Node has no spec.podCIDRs); cannot "
                                f"allocate for container {key[0]} interface {key[1]}", key=key)
            # Pick in every range before recording anything: all or nothing.
            ips = tuple(self._pick(net, key) for net in st.ranges)
            self._commit([{"op": "alloc", "key": list(key), "ips": [str(i) for i in ips]}])
        log.info("addresses allocated", extra={"container_id": key[0], "ifname": key[1],
                                                "ips": [str(i) for i in ips]})
        return ips

    def release(self, container_id: str, ifname: str) -> bool:
        key = _check_key(container_id, ifname)
        with self._lock:
            ips = self._state.allocations.get(key)
            if ips is None:
                return False
            self._commit([{"op": "free", "key": list(key)}])
        log.info("addresses released", extra={"container_id": key[0], "ifname": key[1],
                                               "ips": [str(i) for i in ips]})
        return True

    def gc(self, valid: Collection[tuple[str, str]]) -> list[Key]:
        keep = {(k[0], k[1]) for k in valid}
        with self._lock:
            stale = sorted(k for k in self._state.allocations if k not in keep)
            if stale:
                self._commit([{"op": "free", "key": list(k)} for k in stale])
        if stale:
            log.info("stale allocations released", extra={"keys": [list(k) for k in stale]})
        return stale

    def allocations(self) -> dict[Key, tuple[IP, ...]]:
        with self._lock:
            return dict(self._state.allocations)

    def outside_ranges(self) -> list[Key]:
        with self._lock:
            ranges = self._state.ranges
            return sorted(k for k, ips in self._state.allocations.items()
                          if any(not any(ip in net for net in ranges) for ip in ips))

    def close(self) -> None:
        for attr in ("_journal_fd", "_lock_fd"):
            fd = getattr(self, attr, -1)
            if fd >= 0:
                os.close(fd)       # closing the lock fd also drops the flock
                setattr(self, attr, -1)

    def __enter__(self) -> "Ipam":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals --------------------------------------------------------

    def _pick(self, net: Net, key: Key) -> IP:
        st = self._state
        first, last = assignable_bounds(net)
        size = max(0, last - first + 1)
        in_use = sum(1 for ip in st.owners if ip in net)
        if in_use >= size:
            raise RangeExhausted(net, size, key)
        cursor = st.cursors.get(net)
        start = cursor + 1 if cursor is not None and first <= cursor < last else first
        # Fewer than `size` addresses are taken, so at most in_use + 1 probes are needed.
        for i in range(in_use + 1):
            cand = ipaddress.ip_address(first + (start - first + i) % size)
            if cand not in st.owners:
                return cand
        raise AssertionError("unreachable: a free address must exist")  # pragma: no cover

    def _commit(self, records: Iterable[dict[str, Any]]) -> None:
        """Journal ``records`` durably, then apply them; on a write failure nothing changes."""
        if self._journal_fd < 0:
            raise IpamStateError("IPAM is closed", path=self.dir)
        recs = []
        seq = self._state.seq
        for r in records:
            seq += 1
            recs.append({"seq": seq, **r})
        data = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in recs)
        start = os.lseek(self._journal_fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._journal_fd, view):]
            os.fdatasync(self._journal_fd)
        except OSError as e:
            try:
                os.ftruncate(self._journal_fd, start)   # no torn record left behind
            except OSError:
                pass
            raise IpamStateError(f"cannot write IPAM journal {self.journal_path}: {e}",
                                 path=self.journal_path) from e
        for r in recs:
            self._state.apply(r)
        self._since_snapshot += len(recs)
        if self._since_snapshot >= self._snapshot_every:
            try:
                self._compact()
            except OSError as e:
                # The journal still holds every change; compaction is retried next time.
                log.warning("IPAM snapshot failed", extra={"path": str(self.snapshot_path),
                                                           "error": str(e)})

    def _compact(self) -> None:
        # Snapshot first: a crash before the truncate leaves journal records the
        # snapshot already contains, and replay skips them by sequence number.
        write_json(self.snapshot_path, self._state.to_json())
        os.ftruncate(self._journal_fd, 0)
        os.fdatasync(self._journal_fd)
        self._since_snapshot = 0

    def _recover(self) -> _State:
        try:
            snap = read_json(self.snapshot_path)
            st = _State() if snap is None else _State.from_json(snap)
        except (CorruptFile, KeyError, TypeError, ValueError) as e:
            # Starting empty would hand out addresses pods still use: refuse instead.
            raise IpamStateError(f"IPAM snapshot {self.snapshot_path} is unreadable ({e}); "
                                 f"move it aside only if every pod on this node is recreated",
                                 path=self.snapshot_path) from e
        base = st.seq
        try:
            data = self.journal_path.read_bytes()
        except FileNotFoundError:
            data = b""
        lines = data.split(b"\n")
        complete = lines[:-1]          # the part after the last newline was never finished
        torn = lines[-1] != b""
        for n, line in enumerate(complete, 1):
            try:
                rec = json.loads(line)
                if rec["seq"] <= base:
                    continue
                st.apply(rec)
            except (ValueError, KeyError, TypeError, IndexError) as e:
                if n == len(complete):
                    # A crash can leave the last line full of garbage (e.g. zeros after a
                    # size update without its data); it was never acknowledged to a caller.
                    torn = True
                    break
                raise IpamStateError(f"IPAM journal {self.journal_path} line {n} is damaged "
                                     f"({e}) and is not the last line", path=self.journal_path) from e
        if torn:
            log.warning("ignoring a torn last line in the IPAM journal",
                        extra={"path": str(self.journal_path)})
        return st
