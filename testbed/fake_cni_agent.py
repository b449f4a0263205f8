"""A real gRPC CniBackend server on a unix socket that records and answers as told.

Stands in for the node agent in the plugin's tests and in perf/cni_exec.py:
the plugin talks real gRPC to it; only the answers are canned.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Callable

import grpc

from vppagent.cni.pb import cni_backend_pb2 as pb
from vppagent.cni.pb import cni_backend_pb2_grpc as pb_grpc

# The spec's own example result (CNI spec, "Result" section), as the agent returns it.
SPEC_RESULT: dict[str, Any] = {
    "cniVersion": "1.0.0",
    "interfaces": [
        {"name": "cni0", "mac": "00:11:22:33:44:55"},
        {"name": "veth3243", "mac": "55:44:33:22:11:11"},
        {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/blue"},
    ],
    "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 2}],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dns": {"nameservers": ["10.1.0.1"]},
}

Behaviour = Callable[[Any, grpc.ServicerContext], Any]


@dataclass
class FakeAgent:
    socket: str
    requests: list[tuple[str, Any]] = field(default_factory=list)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)

    # What a test tells the agent to do for one method.
    def reply(self, method: str, reply: Any) -> None:
        self.behaviours[method] = lambda req, ctx: reply

    def cni_error(self, method: str, code: int, msg: str, details: str = "") -> None:
        reply_type = pb.AddReply if method == "Add" else pb.CniReply
        self.reply(method, reply_type(error=pb.CniError(code=code, msg=msg, details=details)))

    def abort(self, method: str, status: grpc.StatusCode, details: str) -> None:
        def behave(req: Any, ctx: grpc.ServicerContext) -> Any:
            ctx.abort(status, details)
        self.behaviours[method] = behave

    def stall(self, method: str, seconds: float) -> None:
        def behave(req: Any, ctx: grpc.ServicerContext) -> Any:
            self.stopping.wait(seconds)
            return pb.AddReply(result=json.dumps(SPEC_RESULT).encode()) if method == "Add" \
                else pb.CniReply()
        self.behaviours[method] = behave

    def raise_in(self, method: str, exc: Exception) -> None:
        def behave(req: Any, ctx: grpc.ServicerContext) -> Any:
            raise exc
        self.behaviours[method] = behave

    def calls(self, method: str) -> list[Any]:
        return [r for m, r in self.requests if m == method]


class _Servicer(pb_grpc.CniBackendServicer):
    def __init__(self, agent: FakeAgent) -> None:
        self.agent = agent

    def _serve(self, method: str, request: Any, context: grpc.ServicerContext, default: Any) -> Any:
        self.agent.requests.append((method, request))
        behave = self.agent.behaviours.get(method)
        return behave(request, context) if behave else default

    def Add(self, request, context):  # noqa: N802 - gRPC's names
        return self._serve("Add", request, context,
                           pb.AddReply(result=json.dumps(SPEC_RESULT).encode()))

    def Del(self, request, context):  # noqa: N802
        return self._serve("Del", request, context, pb.CniReply())

    def Check(self, request, context):  # noqa: N802
        return self._serve("Check", request, context, pb.CniReply())

    def Status(self, request, context):  # noqa: N802
        return self._serve("Status", request, context, pb.CniReply())

    def Gc(self, request, context):  # noqa: N802
        return self._serve("Gc", request, context, pb.CniReply())


class RunningAgent:
    """Start with ``with RunningAgent() as agent:``; the socket lives in a private temp dir."""

    def __init__(self) -> None:
        # Short path: unix socket paths are limited to 107 bytes.
        self._dir = tempfile.mkdtemp(prefix="vpa-cni-", dir="/tmp")
        self.agent = FakeAgent(socket=f"{self._dir}/cni.sock")
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_CniBackendServicer_to_server(_Servicer(self.agent), self._server)
        self._server.add_insecure_port(f"unix:{self.agent.socket}")

    def __enter__(self) -> FakeAgent:
        self._server.start()
        return self.agent

    def __exit__(self, *exc: object) -> None:
        self.agent.stopping.set()
        self._server.stop(grace=None).wait()
        shutil.rmtree(self._dir, ignore_errors=True)
