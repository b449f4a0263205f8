"""A VPP inside a pod's netns, standing in for a memif application (the pod's user-space peer).

The node's VPP listens on the abstract socket ``vppagent/memif0`` inside the
pod's netns (memif master, IP mode); abstract sockets belong to a netns, so
the peer runs there: its binary is started through a small wrapper that
enters the netns (``ip netns exec`` execs, so the pid is VPP's own). It
connects as memif slave, takes the pod's memif address and routes
everything out of the memif.
"""
from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from perf.runner.envs.common import EnvError
from testbed.targets import api_dir

MEMIF_SOCKET = "abstract:vppagent/memif0"


def _cli(vpp: Any, cmd: str) -> str:
    reply = vpp.call("cli_inband", cmd=cmd).reply
    if "unknown input" in reply or "error" in reply.lower():
        raise EnvError(f"pod VPP `{cmd}`: {reply.strip()[:300]}")
    return reply


def start_memif_peer(stack: ExitStack, binary: str, workdir: Path, netns: str, address: str) -> tuple[Any, Any]:
    """(VppProcess, VppClient) of a VPP in ``netns`` whose memif is up with ``address``."""
    from startup.vpp_process import VppPaths, VppProcess, render_startup_conf
    from vppagent.vpp.client import VppClient

    workdir.mkdir(parents=True, exist_ok=True)
    wrapper = workdir / "vpp-in-netns"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {netns} {binary} "$@"\n')
    wrapper.chmod(0o755)
    conf = render_startup_conf(VppPaths(workdir), heap="256M", buffers=8192)
    proc = stack.enter_context(VppProcess(str(wrapper), workdir=workdir, config=conf))
    vpp = VppClient(str(proc.paths.api_socket), api_dir(), required={}).connect()
    stack.callback(vpp.close)
    _cli(vpp, f"create memif socket id 1 filename {MEMIF_SOCKET}")
    _cli(vpp, "create interface memif socket-id 1 id 0 slave mode ip")
    name = "memif1/0"  # memif<socket-id>/<id>; the CLI prints nothing on success
    _cli(vpp, f"set interface state {name} up")
    _cli(vpp, f"set interface ip address {name} {address}/32")
    _cli(vpp, f"ip route add 0.0.0.0/0 via {name}")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if "connected" in _cli(vpp, f"show memif {name}").lower().replace("disconnected", ""):
            return proc, vpp
        time.sleep(0.1)
    raise EnvError(f"the pod VPP's memif in {netns} did not connect to the node's: "
                   f"{_cli(vpp, f'show memif {name}').strip()[:400]}")
