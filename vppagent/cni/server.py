"""The agent's CNI gRPC server: the unix socket ``vppagent-cni`` talks to.

Owns: the socket (mode 0600 in a 0700 directory: only root on the node
may attach pods), decoding requests into ``CniCall``s for the ``CniBackend``,
and encoding its answers and ``CniFailure``s as the proto's replies.

Deadlines: the plugin sends its timeout as the gRPC deadline. An ADD that
finishes after the caller gave up is rolled back at once (the runtime
treats the ADD as failed and will retry or DEL; a pod attached behind its
back would leak an address).

Must not touch: VPP, netlink, IPAM (all behind the backend).
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from vppagent.cni.pb import cni_backend_pb2 as pb
from vppagent.cni.pb import cni_backend_pb2_grpc as pb_grpc
from vppagent.cni.backend import ERR_INVALID_CONFIG, CniBackend, CniCall, CniFailure, parse_cni_args

log = logging.getLogger(__name__)

ERR_AGENT_BUG = 101


def _error(e: CniFailure) -> pb.CniError:
    return pb.CniError(code=e.code, msg=e.msg, details=e.details)


def _json(data: bytes, what: str) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CniFailure(ERR_INVALID_CONFIG, f"{what} is not valid JSON", str(e)) from None


def _call(req: Any) -> CniCall:
    config = _json(req.config, "the network configuration") or {}
    if not isinstance(config, dict):
        raise CniFailure(ERR_INVALID_CONFIG, "the network configuration must be a JSON object")
    prev = _json(req.prev_result, "prevResult")
    return CniCall(req.container_id, req.netns, req.ifname, parse_cni_args(req.args), config, prev)


class _Servicer(pb_grpc.CniBackendServicer):
    def __init__(self, backend: CniBackend, applied: Callable[[Any], Any]):
        self.backend = backend
        self.applied = applied

    def _run(self, name: str, req: Any, fn: Callable[[], Any]) -> tuple[Any, pb.CniError | None]:
        try:
            return fn(), None
        except CniFailure as e:
            return None, _error(e)
        except Exception as e:  # a bug: answer with its text rather than a gRPC crash
            log.exception("CNI call failed unexpectedly", extra={"command": name,
                                                                 "container": getattr(req, "container_id", "")})
            return None, pb.CniError(code=ERR_AGENT_BUG, msg=f"agent error in {name}", details=repr(e))

    def Add(self, request: Any, context: grpc.ServicerContext) -> Any:
        call: CniCall | None = None

        def add() -> bytes:
            nonlocal call
            call = _call(request)
            return json.dumps(self.backend.add(call)).encode()

        result, err = self._run("ADD", request, add)
        if err is None and call is not None and not context.is_active():
            # The plugin gave up (deadline): it reported a failure, so undo.
            log.warning("ADD finished after the caller's deadline; rolling back",
                        extra={"container": call.container_id})
            self._run("ADD-rollback", request, lambda: self.backend.delete(call))
            return pb.AddReply(error=pb.CniError(code=11, msg="ADD finished too late and was rolled back"))
        return pb.AddReply(error=err) if err is not None else pb.AddReply(result=result)

    def Del(self, request: Any, context: grpc.ServicerContext) -> Any:
        _, err = self._run("DEL", request, lambda: self.backend.delete(_call(request)))
        return pb.CniReply(error=err) if err is not None else pb.CniReply()

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        _, err = self._run("CHECK", request, lambda: self.backend.check(_call(request), self.applied))
        return pb.CniReply(error=err) if err is not None else pb.CniReply()

    def Status(self, request: Any, context: grpc.ServicerContext) -> Any:
        _, err = self._run("STATUS", request, self.backend.status)
        return pb.CniReply(error=err) if err is not None else pb.CniReply()

    def Gc(self, request: Any, context: grpc.ServicerContext) -> Any:
        valid = [(a.container_id, a.ifname) for a in request.valid_attachments]
        _, err = self._run("GC", request, lambda: self.backend.gc(valid))
        return pb.CniReply(error=err) if err is not None else pb.CniReply()


class CniServer:
    """The gRPC server on ``socket_path``; ``start``/``stop`` from the agent's run()."""

    def __init__(self, socket_path: str | Path, backend: CniBackend, applied: Callable[[Any], Any], *,
                 workers: int = 8):
        self.socket_path = Path(socket_path)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers,
                                                              thread_name_prefix="cni"))
        pb_grpc.add_CniBackendServicer_to_server(_Servicer(backend, applied), self._server)

    def start(self) -> None:
        d = self.socket_path.parent
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        if self.socket_path.exists() or self.socket_path.is_symlink():
            self.socket_path.unlink()  # a previous agent's: nobody listens on it any more
        old = os.umask(0o177)  # the socket is created 0600, never briefly world-writable
        try:
            self._server.add_insecure_port(f"unix:{self.socket_path}")
            self._server.start()
        finally:
            os.umask(old)
        log.info("CNI server listening", extra={"socket": str(self.socket_path)})

    def stop(self, grace_s: float = 2.0) -> None:
        self._server.stop(grace_s).wait()
        try:
            self.socket_path.unlink()
        except FileNotFoundError:
            pass


__all__ = ["CniServer"]
