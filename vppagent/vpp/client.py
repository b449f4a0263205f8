"""The connection to VPP's binary API: synchronous calls, dumps and pipelined bulk.

Owns: one API socket connection (handshake, message table, compatibility
check), the reader thread that matches replies to requests by context, the
detection of a disconnect (VPP exited or restarted) and the reconnect loop,
and per-message call counters. Families (``interfaces``, ``routes``...) build
on :class:`VppClient`; nothing outside ``vppagent.vpp`` sees vpp_papi types.

Concurrency: any thread may call; requests are written under one lock and a
single reader thread completes them. Bulk calls keep up to ``window``
requests in flight, so large programs are bound by packing, not round trips.
Connection events (``Disconnected``/``Connected``) go to subscribers, which
are expected to hand them to the reconciler's queue and return at once.
"""
from __future__ import annotations

import itertools
import logging
import random
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from vppagent.crash import NONE as NO_CRASH, CrashPoints

from .api_defs import ApiDefinitions, Service, load_definitions
from .codec import Codec
from .compat import check_compatibility
from .errors import (
    VppApiError,
    VppDisconnectedError,
    VppError,
    VppTimeoutError,
)
from .transport import SocketTransport

log = logging.getLogger(__name__)

# Fixed by the protocol: the handshake happens before the message table is known.
_SOCKCLNT_CREATE_ID = 15
_SOCKCLNT_CREATE_REPLY_ID = 16
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")

# Request fields that identify an object and are safe to show in errors and
# logs. Anything else (keys, secrets, payloads) is never echoed.
_CONTEXT_FIELDS = (
    "sw_if_index", "table_id", "tag", "host_if_name", "id", "socket_id",
    "instance", "sa_id", "spi", "user_instance", "peer_index", "acl_index",
)


@dataclass(frozen=True)
class Disconnected:
    socket: str
    reason: str


@dataclass(frozen=True)
class Connected:
    socket: str
    vpe_pid: int
    # True when this is a re-connection after a loss: VPP may have restarted
    # with empty state, so everything must be read back and re-programmed.
    reconnect: bool


ConnectionEvent = Disconnected | Connected


class BulkError(VppError):
    """Some requests of a bulk call failed; ``errors`` maps request index to error."""

    def __init__(self, errors: dict[int, VppApiError], total: int):
        self.errors = errors
        first = errors[min(errors)]
        super().__init__(f"{len(errors)} of {total} requests failed; first: {first}")


class _Batch:
    """Completion of a bulk call.

    Only the reader thread increments ``completed`` and only the caller sets
    ``total``; each checks after its own write, so one of them always sees
    both and sets ``done`` (setting it twice is harmless).
    """

    __slots__ = ("completed", "total", "done", "slots")

    def __init__(self, window: int):
        self.completed = 0
        self.total: int | None = None
        self.done = threading.Event()
        self.slots = threading.BoundedSemaphore(window)

    def finish(self, total: int) -> None:
        self.total = total
        if self.completed >= total:
            self.done.set()


@dataclass(eq=False)
class _Pending:
    name: str
    service: Service
    context: int
    request_fields: Mapping[str, Any]
    batch: _Batch | None = None
    done: threading.Event | None = None
    reply: bytes | None = None
    details: list[bytes] = field(default_factory=list)
    error: VppError | None = None


class VppClient:
    # The errors that say "VPP is not reachable", not "VPP refused this": a
    # reconciler pass stops on them and resyncs (reconcile.descriptor.Target).
    unavailable: tuple[type[BaseException], ...] = (VppDisconnectedError, VppTimeoutError)

    def __init__(
        self,
        socket_path: str,
        api_dir: str | None = None,
        *,
        name: str = "vppagent",
        timeout: float = 5.0,
        required: Mapping[str, str] | None = None,
        auto_reconnect: bool = False,
        definitions: ApiDefinitions | None = None,
        crash: CrashPoints = NO_CRASH,
    ):
        self.socket_path = socket_path
        self.timeout = timeout
        self.client_name = name
        self.defs = definitions or load_definitions(api_dir)
        self.codec = Codec(self.defs.messages)
        self._required = required
        self._auto_reconnect = auto_reconnect
        # None unless a crash point is armed: the hot paths then pay one test, not a string per request.
        self._crash = crash if crash.armed else None
        self._transport = SocketTransport(socket_path, timeout)
        self._write_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._contexts = itertools.count(1)
        self._ids: dict[str, int] = {}
        self._id_by_name: dict[str, int] = {}
        self._names: list[str | None] = []
        self._context_at: list[int] = []  # byte offset of a message's context; 0: it has none
        self._client_index = 0
        self._reader: threading.Thread | None = None
        self._closing = False
        self._subscribers: list[Callable[[ConnectionEvent], None]] = []
        self._connected_once = False
        self.connected = False
        self.vpe_pid = 0
        self.calls: Counter[str] = Counter()
        # Requests VPP refused (retval != 0) or did not answer in time, by message (metrics).
        self.errors: Counter[str] = Counter()

    # -- connection -------------------------------------------------------

    def connect(self) -> "VppClient":
        """Connect, check compatibility, start the reader. Raises a VppError."""
        self._closing = False
        self._transport.open()
        try:
            self._handshake()
            check_compatibility(self.defs, self._ids, self._required, where=self.socket_path)
        except BaseException:
            self._transport.close()
            raise
        self.connected = True
        self._reader = threading.Thread(target=self._read_loop, name="vpp-reader", daemon=True)
        self._reader.start()
        self.vpe_pid = self.call("control_ping").vpe_pid
        reconnect, self._connected_once = self._connected_once, True
        self._emit(Connected(self.socket_path, self.vpe_pid, reconnect))
        return self

    def _handshake(self) -> None:
        msg = self.defs.message("sockclnt_create")
        self._transport.send([msg.pack({"_vl_msg_id": _SOCKCLNT_CREATE_ID, "context": 1,
                                        "name": self.client_name})])
        raw = self._transport.read_one()
        if _U16.unpack_from(raw)[0] != _SOCKCLNT_CREATE_REPLY_ID:
            raise VppError(f"{self.socket_path}: unexpected handshake reply; is this VPP's API socket?")
        reply, _ = self.defs.message("sockclnt_create_reply").unpack(raw)
        if reply.response != 0:
            raise VppError(f"{self.socket_path}: VPP refused the API client (response {reply.response})")
        self._client_index = reply.index
        ids = {m.name: m.index for m in reply.message_table}
        size = max(ids.values(), default=0) + 1
        names: list[str | None] = [None] * size
        context_at = [0] * size
        answers = {n for s in self.defs.services.values() for n in (s.reply, s.details) if n}
        for name_crc, index in ids.items():
            name = name_crc.rsplit("_", 1)[0]
            names[index] = name
            m = self.defs.messages.get(name)
            # Replies and details carry the context right after the id; requests and events
            # carry a client_index there instead. A few details are declared like requests
            # (sw_interface_rx_placement_details): their context follows the client_index.
            if m is not None and len(m.fields) > 1 and m.fields[1] == "context":
                context_at[index] = 2
            elif m is not None and name in answers and m.fields[1:3] == ["client_index", "context"]:
                context_at[index] = 6
        self._ids = ids
        self._id_by_name: dict[str, int] = {}  # VPP may number messages anew after a restart
        self._names = names
        self._context_at = context_at

    def subscribe(self, callback: Callable[[ConnectionEvent], None]) -> None:
        self._subscribers.append(callback)

    def _emit(self, event: ConnectionEvent) -> None:
        log.info("vpp connection event", extra={"event": type(event).__name__, "socket": self.socket_path})
        for cb in list(self._subscribers):
            try:
                cb(event)
            except Exception:  # a subscriber bug must not kill the reader
                log.exception("connection event subscriber failed")

    def close(self) -> None:
        self._closing = True
        if self.connected:
            try:  # lets VPP free the registration now rather than on socket EOF
                self.call("sockclnt_delete", check=False, index=self._client_index)
            except VppError:
                pass
        self._transport.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=self.timeout)
        self.connected = False

    def __enter__(self) -> "VppClient":
        return self if self.connected else self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def msg_id(self, name: str) -> int:
        i = self._id_by_name.get(name)
        if i is None:
            i = self._id_by_name[name] = self._ids[f"{name}_{self.defs.crc(name)[2:]}"]
        return i

    def has_message(self, name: str) -> bool:
        m = self.defs.messages.get(name)
        return m is not None and f"{name}_{m.crc[2:]}" in self._ids

    # -- reader -------------------------------------------------------------

    def _read_loop(self) -> None:
        reason = "VPP closed the API socket"
        try:
            for raw in self._transport.frames(None):
                self._dispatch(raw)
        except OSError as e:
            reason = f"API socket error: {e}"
        self._lost(reason)

    def _dispatch(self, raw: bytes) -> None:
        msg_id = _U16.unpack_from(raw)[0]
        name = self._names[msg_id] if msg_id < len(self._names) else None
        at = self._context_at[msg_id] if name is not None else 0
        if not at:
            log.debug("ignoring VPP event", extra={"api_message": name, "msg_id": msg_id})
            return
        ctx = _U32.unpack_from(raw, at)[0]
        p = self._pending.get(ctx)
        if p is None:
            log.warning("reply for unknown context", extra={"api_message": name, "context": ctx})
            return
        if name == p.service.details:
            p.details.append(raw)
            return
        if name != p.service.reply:
            log.warning("unexpected reply", extra={"api_message": name, "expected": p.service.reply})
            return
        p.reply = raw
        self._complete(p)

    def _complete(self, p: _Pending) -> None:
        self._pending.pop(p.context, None)
        batch = p.batch
        if batch is not None:
            batch.completed += 1
            batch.slots.release()
            if batch.total is not None and batch.completed >= batch.total:
                batch.done.set()
        elif p.done is not None:
            p.done.set()

    def _lost(self, reason: str) -> None:
        was_connected = self.connected
        self.connected = False
        self._transport.close()
        err = VppDisconnectedError(f"lost connection to VPP at {self.socket_path}: {reason}")
        for p in list(self._pending.values()):
            p.error = err
            self._complete(p)
            if p.batch is not None:
                p.batch.done.set()  # the caller must not wait for the rest
        if self._closing or not was_connected:
            return
        log.warning("VPP connection lost", extra={"socket": self.socket_path, "reason": reason})
        self._emit(Disconnected(self.socket_path, reason))
        if self._auto_reconnect:
            threading.Thread(target=self._reconnect_loop, name="vpp-reconnect", daemon=True).start()

    def _reconnect_loop(self, max_delay: float = 5.0) -> None:
        delay = 0.05
        while not self._closing:
            try:
                self.connect()
                return
            except (VppError, OSError) as e:  # a reset mid-handshake: try again
                log.info("VPP not back yet", extra={"socket": self.socket_path, "error": str(e)})
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, max_delay)

    # -- requests -----------------------------------------------------------

    def _pack(self, name: str, ctx: int, fields: Mapping[str, Any]) -> bytes:
        d = dict(fields)
        d["_vl_msg_id"] = self.msg_id(name)
        d["client_index"] = self._client_index
        d["context"] = ctx
        return self.codec.packer(name)(d)

    def _next_context(self) -> int:
        c = next(self._contexts) & 0xFFFFFFFF
        if c == 0:
            c = next(self._contexts) & 0xFFFFFFFF
        return c

    def _start(self, name: str, fields: Mapping[str, Any], batch: _Batch | None) -> tuple[_Pending, list[bytes]]:
        if not self.connected:
            raise VppDisconnectedError(f"not connected to VPP at {self.socket_path}")
        svc = self.defs.service(name)
        if batch is not None and svc.kind != "single":
            raise ValueError(f"bulk() takes single-reply requests, not the dump {name}")
        ctx = self._next_context()
        p = _Pending(name, svc, ctx, fields, batch=batch,
                     done=None if batch else threading.Event())
        self._pending[ctx] = p
        self.calls[name] += 1
        out = [self._pack(name, ctx, fields)]
        if svc.kind == "dump":
            # Old-style dumps end when the control_ping sent behind them is answered.
            out.append(self._pack("control_ping", ctx, {}))
        return p, out

    def _wait(self, p: _Pending) -> None:
        assert p.done is not None
        if not p.done.wait(self.timeout):
            self._pending.pop(p.context, None)
            self.errors[p.name] += 1
            raise VppTimeoutError(p.name, self.timeout)
        if p.error is not None:
            raise p.error

    def _decode_reply(self, p: _Pending, check: bool) -> Any:
        reply = self.codec.unpacker(p.service.reply)(p.reply)
        retval = getattr(reply, "retval", 0)
        if retval != 0:
            self.errors[p.name] += 1
            if check:
                raise VppApiError(p.name, retval, _error_context(p.request_fields))
        return reply

    def _send(self, p: _Pending, out: list[bytes]) -> None:
        # A send can fail before the reader has seen the socket close: the request
        # never left, so it must not wait in _pending for an answer.
        try:
            self._transport.send(out)
        except VppDisconnectedError:
            self._pending.pop(p.context, None)
            raise

    def call(self, name: str, *, check: bool = True, **fields: Any) -> Any:
        """Send one request and return VPP's reply; raise VppApiError on retval != 0."""
        if self._crash is not None:
            self._crash.reached(f"vpp:{name}:before")
        with self._write_lock:
            p, out = self._start(name, fields, None)
            self._send(p, out)
        self._wait(p)
        if self._crash is not None:
            self._crash.reached(f"vpp:{name}:after")
        return self._decode_reply(p, check)

    def dump(self, name: str, **fields: Any) -> list[Any]:
        """Send a dump request and return the decoded details."""
        with self._write_lock:
            p, out = self._start(name, fields, None)
            if p.service.kind == "single":
                self._pending.pop(p.context, None)
                raise ValueError(f"{name} is not a dump")
            self._send(p, out)
        self._wait(p)
        if p.service.kind == "stream":
            self._decode_reply(p, True)
        unpack = self.codec.unpacker(p.service.details)
        return [unpack(d) for d in p.details]

    def bulk(
        self,
        requests: Iterable[tuple[str, Mapping[str, Any]]],
        *,
        check: bool = True,
        window: int = 4096,
        flush_every: int = 256,
    ) -> list[Any]:
        """Pipeline many single-reply requests; return replies in request order.

        Up to ``window`` requests are in flight. With ``check``, every request
        is still sent and awaited, then a BulkError lists the failures.
        """
        pendings: list[_Pending] = []
        batch = _Batch(window)
        out: list[bytes] = []

        def flush() -> None:
            if out:
                with self._write_lock:
                    self._transport.send(out)
                out.clear()

        crash = self._crash
        for name, fields in requests:
            if crash is not None:
                crash.reached(f"vpp:{name}:before")
            if not batch.slots.acquire(blocking=False):
                flush()  # the replies that free a slot need their requests sent
                if not batch.slots.acquire(timeout=self.timeout):
                    raise VppTimeoutError(name, self.timeout)
            with self._write_lock:
                p, msgs = self._start(name, fields, batch)
            pendings.append(p)
            out.extend(msgs)
            if len(out) >= flush_every:
                flush()
        flush()
        batch.finish(len(pendings))
        if not batch.done.wait(self.timeout):
            raise VppTimeoutError(f"bulk of {len(pendings)} requests", self.timeout)
        if crash is not None:
            for p in pendings:
                crash.reached(f"vpp:{p.name}:after")
        replies: list[Any] = []
        errors: dict[int, VppApiError] = {}
        for i, p in enumerate(pendings):
            if p.error is not None:
                raise p.error
            reply = self._decode_reply(p, False)
            retval = getattr(reply, "retval", 0)
            if check and retval != 0:
                errors[i] = VppApiError(p.name, retval, _error_context(p.request_fields))
            replies.append(reply)
        if errors:
            raise BulkError(errors, len(pendings))
        return replies


def _error_context(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: fields[k] for k in _CONTEXT_FIELDS if k in fields}
