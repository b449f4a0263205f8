"""The emulator process: VPP's API socket server in front of the emulated state.

Owns: :class:`Emulator` (the public object: start/stop/restart, state access
for tests and handler families) and the socket server (accepting clients,
framing, per-client buffers, registrations).

Concurrency model: one thread runs a ``selectors`` loop over the listening
socket and every client, like VPP's single main thread runs API handlers.
Each client's frames are handled strictly in order; everything a read
brought in is decoded and handled before the loop moves on, and the answers
go out with one ``send`` per client. Output is buffered without limit and
reading never stops while output is pending, so a client that pipelines
thousands of requests before reading cannot deadlock the server (VPP also
queues its output vector without bound). A single thread was chosen over a
thread per client: it needs no locking between clients, handles each batch
as VPP's main thread does, and is fast enough (tens of thousands of
messages per second). Other threads (tests) see state through
``Emulator.locked()``, which holds the lock the loop holds while handling.

Framing: each message is preceded by the 16-byte header ``>QII`` (queue,
length, gc mark); only the length matters.
"""
from __future__ import annotations

import errno
import logging
import os
import queue
import random
import selectors
import socket
import stat
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from .apidefs import FRAME_HEADER, ApiDefinitions, load_definitions
from .fib import Fib
from .handlers import Dispatch, discover
from .interfaces import InterfaceTable
from .protocol import SOCKET_HANDLE_BIT, ApiProtocol, Session
from .state import EmulatorConfig, IndexPool, VppState

log = logging.getLogger(__name__)

T = TypeVar("T")

_READ_CHUNK = 1 << 20
_MAX_READ_PER_TURN = 8 << 20  # then let other clients have a turn
_SUN_PATH_MAX = 107


class EmulatorError(Exception):
    """The emulator cannot start (bad socket path, path already served...)."""


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    reg_index: int
    name: str = ""
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)
    outpos: int = 0
    closing: bool = False  # sockclnt_delete: close once the reply is out
    writing: bool = False

    @property
    def client_index(self) -> int:
        return self.reg_index | SOCKET_HANDLE_BIT


class Emulator:
    """A test double of VPP serving VPP's binary API on a unix socket.

    ``Emulator(path).start()`` serves in a background thread (or use it as a
    context manager); ``serve_forever()`` serves in the calling thread.
    ``interfaces``, ``fib`` and ``state(Cls)`` are the emulated VPP's state;
    read them inside ``with emu.locked():`` while clients may be active.
    """

    def __init__(self, socket_path: str | os.PathLike, api_dir: str | os.PathLike | None = None,
                 *, no_vhost_net: bool = False, runtime_dir: str = "/run/vpp",
                 host_interfaces: Iterable[str] = (), seed: int = 0, host_devices: bool = False,
                 workers: int = 0, definitions: ApiDefinitions | None = None, dispatch: Dispatch | None = None):
        self.socket_path = str(socket_path)
        self.config = EmulatorConfig(no_vhost_net=no_vhost_net, runtime_dir=runtime_dir,
                                     host_interfaces=frozenset(host_interfaces), seed=seed,
                                     host_devices=host_devices, workers=workers)
        self.api = definitions or load_definitions(api_dir)
        self.dispatch = dispatch or discover()
        self.pid = os.getpid()
        # Emulator bugs (handler exceptions): tests assert this stays empty.
        self.handler_errors: list[tuple[str, BaseException]] = []
        # The client being answered, while a handler runs.
        self.session: Session | None = None
        self.restarts = 0
        self._lock = threading.RLock()
        self._vpp = VppState(self.config)
        self._server = _Server(self)
        self._thread: threading.Thread | None = None
        for name in self.dispatch.handlers:
            if name not in self.api.by_name:
                log.info("handler for a message these definitions lack",
                         extra={"api_message": name})

    # -- state, for handlers and tests --------------------------------------

    @property
    def vpp(self) -> VppState:
        return self._vpp

    @property
    def interfaces(self) -> InterfaceTable:
        return self._vpp.interfaces

    @property
    def fib(self) -> Fib:
        return self._vpp.fib

    @property
    def random(self) -> random.Random:
        """The emulated VPP's source of "random" choices (seeded, reset on restart)."""
        return self._vpp.random

    def state(self, cls: Callable[[], T]) -> T:
        """The state of an API family (created on first use, dropped on restart)."""
        return self._vpp.state(cls)

    @contextmanager
    def locked(self) -> Iterator[VppState]:
        """Hold the emulated VPP still (no request is handled meanwhile)."""
        with self._lock:
            yield self._vpp

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> "Emulator":
        """Listen on the socket and serve in a background thread."""
        self._server.rearm()
        self.listen()
        self._thread = threading.Thread(target=self._server.serve, name="vpp-emulator",
                                        daemon=True)
        self._thread.start()
        return self

    def listen(self) -> None:
        """Create the socket (raises EmulatorError with one clear line if it cannot)."""
        self._server.open()

    def serve(self) -> None:
        """Serve in this thread until stop() or request_stop() (signals) ends it."""
        self._server.serve()

    def serve_forever(self) -> None:
        self.listen()
        self.serve()

    def stop(self) -> None:
        """Disconnect every client, stop listening, remove the socket file."""
        self._server.request_stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
            self._thread = None
        self._server.close()

    def restart(self) -> None:
        """Simulate a VPP restart: all state gone, every client disconnected."""
        def wipe() -> None:
            with self._lock:
                self._vpp = VppState(self.config)
                self.restarts += 1
            self._server.drop_all("VPP restarted")
            log.info("emulated VPP restarted: state wiped, clients disconnected")

        self._server.call(wipe)

    def request_restart(self) -> None:
        """restart() from a signal handler: done by the loop at its next turn."""
        self._server.call_soon(self.restart)

    def request_stop(self) -> None:
        self._server.request_stop()

    def clients(self) -> list[tuple[int, str]]:
        """(client_index, name) of the connected clients."""
        return [(c.client_index, c.name) for c in self._server.connections()]

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _Server:
    """The selectors loop: listening socket, clients, their buffers."""

    def __init__(self, emu: Emulator):
        self._emu = emu
        self._path = emu.socket_path
        self._protocol = ApiProtocol(emu, emu.api, emu.dispatch)
        self._listen: socket.socket | None = None
        self._inode: tuple[int, int] | None = None
        self._sel: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._conns: dict[int, _Conn] = {}  # by registration index
        # Index 0 is VPP's own listening-socket registration.
        self._regs = IndexPool(reserved=1)
        self._stopping = False
        self._loop_thread: int | None = None
        self._dirty: set[_Conn] = set()

    # -- opening ------------------------------------------------------------

    def open(self) -> None:
        path = self._path
        if len(os.fsencode(path)) > _SUN_PATH_MAX:
            raise EmulatorError(f"socket path {path} is longer than {_SUN_PATH_MAX} bytes")
        parent = Path(path).parent
        if not parent.is_dir():
            raise EmulatorError(f"cannot create socket {path}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise EmulatorError(f"cannot create socket {path}: directory {parent} is not writable")
        self._clear_stale(path)
        # Bind under a temporary name and rename into place, so the path
        # appears only once it accepts connections (clients poll for it).
        tmp = str(parent / f".emu-{os.getpid()}-{id(self) & 0xFFFFFF:x}")
        if len(os.fsencode(tmp)) > _SUN_PATH_MAX:
            tmp = path
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if os.path.lexists(tmp) and tmp != path:
                os.unlink(tmp)
            sock.bind(tmp)
            sock.listen(128)
            if tmp != path:
                os.rename(tmp, path)
        except OSError as e:
            sock.close()
            raise EmulatorError(f"cannot listen on {path}: {e.strerror or e}") from e
        sock.setblocking(False)
        st = os.stat(path)
        self._inode = (st.st_dev, st.st_ino)
        self._listen = sock
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = False
        log.info("VPP API emulator listening", extra={"socket": path})

    @staticmethod
    def _clear_stale(path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise EmulatorError(f"{path} exists and is not a socket; refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)  # a socket file left behind by a dead process
            return
        except OSError as e:
            raise EmulatorError(f"cannot check existing socket {path}: {e.strerror or e}") from e
        finally:
            probe.close()
        raise EmulatorError(f"{path} is already served by a running process")

    # -- cross-thread calls ---------------------------------------------------

    def call(self, fn: Callable[[], None]) -> None:
        """Run fn on the loop thread (now, if this is it or no loop runs)."""
        if self._sel is None or threading.get_ident() == self._loop_thread:
            fn()
            return
        done = threading.Event()
        self._calls.put((fn, done))
        self._wake()
        if not done.wait(timeout=30):
            raise TimeoutError("the emulator loop did not run the request")

    def call_soon(self, fn: Callable[[], None]) -> None:
        self._calls.put((fn, None))
        self._wake()

    def _wake(self) -> None:
        if self._wake_w is None:
            return
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # already awake (buffer full) or closing

    def request_stop(self) -> None:
        self._stopping = True
        self._wake()

    def rearm(self) -> None:
        """Forget an earlier stop request (a new start after stop())."""
        self._stopping = False

    def _run_calls(self) -> None:
        try:
            while self._wake_r is not None and self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
        while True:
            try:
                fn, done = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                fn()
            except Exception:
                log.exception("emulator control call failed")
            finally:
                if done is not None:
                    done.set()

    # -- the loop -------------------------------------------------------------

    def serve(self) -> None:
        if self._listen is None or self._wake_r is None:
            raise EmulatorError("open() first")
        sel = selectors.DefaultSelector()
        sel.register(self._listen, selectors.EVENT_READ, None)
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._sel = sel
        self._loop_thread = threading.get_ident()
        try:
            while not self._stopping:
                for key, events in sel.select(timeout=1.0):
                    if key.data is None:
                        self._accept()
                    elif key.data == "wake":
                        self._run_calls()
                    else:
                        conn: _Conn = key.data
                        if events & selectors.EVENT_READ and self._live(conn):
                            self._read(conn)
                        if events & selectors.EVENT_WRITE and self._live(conn):
                            self._flush(conn)
                self._flush_dirty()
            self._run_calls()
        finally:
            self.drop_all("emulator stopping")
            self._sel = None
            self._loop_thread = None
            sel.close()

    def _live(self, conn: _Conn) -> bool:
        return self._conns.get(conn.reg_index) is conn

    def _accept(self) -> None:
        assert self._listen is not None and self._sel is not None
        while True:
            try:
                sock, _ = self._listen.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.warning("accept failed", extra={"error": str(e)})
                return
            sock.setblocking(False)
            conn = _Conn(sock, self._regs.get())
            self._conns[conn.reg_index] = conn
            self._sel.register(sock, selectors.EVENT_READ, conn)
            log.debug("client connected", extra={"client_index": conn.client_index})

    def _read(self, conn: _Conn) -> None:
        got = 0
        eof = False
        while got < _MAX_READ_PER_TURN:
            try:
                chunk = conn.sock.recv(_READ_CHUNK)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                self._drop(conn, f"read error: {e}")
                return
            if not chunk:
                eof = True
                break
            conn.inbuf += chunk
            got += len(chunk)
        frames = self._frames(conn)
        if frames:
            with self._emu._lock:
                for data in frames:
                    if conn.closing:
                        break  # sockclnt_delete: VPP reads nothing more from it
                    self._protocol.handle(conn, self, data)
        if eof:
            self._drop(conn, "client closed the connection")

    @staticmethod
    def _frames(conn: _Conn) -> list[bytes]:
        buf = conn.inbuf
        pos, end, hsize = 0, len(buf), FRAME_HEADER.size
        out = []
        while end - pos >= hsize:
            _, length, _ = FRAME_HEADER.unpack_from(buf, pos)
            if end - pos - hsize < length:
                break
            out.append(bytes(buf[pos + hsize:pos + hsize + length]))
            pos += hsize + length
        if pos:
            del buf[:pos]
        return out

    # -- Transport, for the protocol ----------------------------------------

    def registration(self, client_index: int) -> _Conn | None:
        if not client_index & SOCKET_HANDLE_BIT:
            return None  # a shared-memory client handle: none exist here
        conn = self._conns.get(client_index & ~SOCKET_HANDLE_BIT)
        return conn

    def deliver(self, conn: _Conn, payloads: list[bytes]) -> None:
        out = conn.outbuf
        for p in payloads:
            out += FRAME_HEADER.pack(0, len(p), 0)
            out += p
        self._dirty.add(conn)

    def connections(self) -> list[_Conn]:
        return sorted(self._conns.values(), key=lambda c: c.reg_index)

    # -- writing --------------------------------------------------------------

    def _flush_dirty(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for conn in dirty:
            if self._live(conn):
                self._flush(conn)
        # Registrations closed by sockclnt_delete that had nothing left to send.
        for conn in [c for c in self._conns.values() if c.closing and not c.outbuf]:
            self._drop(conn, "sockclnt_delete")

    def _flush(self, conn: _Conn) -> None:
        while conn.outpos < len(conn.outbuf):
            try:
                with memoryview(conn.outbuf) as view:
                    sent = conn.sock.send(view[conn.outpos:])
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                self._drop(conn, f"write error: {e}")
                return
            conn.outpos += sent
        if conn.outpos >= len(conn.outbuf):
            conn.outbuf.clear()
            conn.outpos = 0
            self._want_write(conn, False)
            if conn.closing:
                self._drop(conn, "sockclnt_delete")
        else:
            if conn.outpos > (1 << 20):
                del conn.outbuf[:conn.outpos]
                conn.outpos = 0
            self._want_write(conn, True)

    def _want_write(self, conn: _Conn, on: bool) -> None:
        if conn.writing == on or self._sel is None:
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if on else 0)
        self._sel.modify(conn.sock, events, conn)
        conn.writing = on

    # -- closing ----------------------------------------------------------------

    def _drop(self, conn: _Conn, reason: str) -> None:
        if self._conns.get(conn.reg_index) is not conn:
            return
        del self._conns[conn.reg_index]
        self._regs.put(conn.reg_index)
        self._dirty.discard(conn)
        if self._sel is not None:
            try:
                self._sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        try:
            conn.sock.close()
        except OSError:
            pass
        log.debug("client disconnected", extra={"client_index": conn.client_index,
                                                 "reason": reason})
        with self._emu._lock:
            self._emu.vpp.notify("on_client_disconnected", conn.client_index)

    def drop_all(self, reason: str) -> None:
        for conn in list(self._conns.values()):
            self._drop(conn, reason)
        self._regs = IndexPool(reserved=1)

    def close(self) -> None:
        if self._sel is None:
            self.drop_all("emulator stopped")
        sock, self._listen = self._listen, None
        if sock is not None:
            sock.close()
            self._unlink_own_socket()
        for s in (self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        self._wake_r = self._wake_w = None

    def _unlink_own_socket(self) -> None:
        try:
            st = os.stat(self._path)
        except OSError:
            return
        # Only remove the file if it is still ours (not a successor's).
        if (st.st_dev, st.st_ino) == self._inode:
            try:
                os.unlink(self._path)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    log.warning("cannot remove socket file", extra={"socket": self._path})
