"""The memif pods' user-space peer: one VPP holding both pods' memifs, as a traffic generator would.

The node's VPP listens on the abstract socket ``vppagent/memif0`` inside each
memif pod's netns (memif master, IP mode). One peer VPP, outside the pods,
connects as memif slave to both sockets (``netns_name=`` reaches an abstract
socket of another netns), the way a TRex with two ports would: the client
pod's memif in table 0 with a default route out of it (the packet generator's
traffic enters there), the server pod's memif in table 1, where what arrives
is counted and dropped by a drop route for the server's address.

Why one peer and not one VPP per pod: every VPP main thread busy-polls a core.
This machine has 2; three of them time-share, and the server's 1,024-slot ring
fills while it waits for a core, so the earlier per-pod peers measured the
scheduler (0.13 Mpps), not VPP. The node's VPP pins its main thread to CPU 1;
the peer takes CPU 0 (``PEER_CORE``), so each has a core of its own.
"""
from __future__ import annotations

import os
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


CLIENT_IF, SERVER_IF = "memif1/0", "memif2/0"  # memif<socket-id>/<id>; the CLI prints nothing on success
SERVER_TABLE = 1
SINK_ADDRESS = "198.19.0.1"  # enables IPv4 on the server-side memif; never a destination
PEER_CORE = 0


def start_traffic_peer(stack: ExitStack, binary: str, workdir: Path, client: tuple[str, str],
                       server: tuple[str, str]) -> tuple[Any, Any]:
    """(VppProcess, VppClient) of the peer VPP; ``client``/``server``: (netns, memif address) of each pod."""
    from startup.vpp_process import VppPaths, VppProcess, render_startup_conf
    from vppagent.vpp.client import VppClient

    workdir.mkdir(parents=True, exist_ok=True)
    conf = render_startup_conf(VppPaths(workdir), heap="256M", buffers=16384,
                               main_core=PEER_CORE if (os.cpu_count() or 1) > 1 else None)
    proc = stack.enter_context(VppProcess(binary, workdir=workdir, config=conf))
    vpp = VppClient(str(proc.paths.api_socket), api_dir(), required={}).connect()
    stack.callback(vpp.close)
    _cli(vpp, f"ip table add {SERVER_TABLE}")
    for socket_id, (netns, address), name, table in ((1, client, CLIENT_IF, 0), (2, server, SERVER_IF, SERVER_TABLE)):
        _cli(vpp, f"create memif socket id {socket_id} filename {MEMIF_SOCKET},netns_name=/var/run/netns/{netns}")
        _cli(vpp, f"create interface memif socket-id {socket_id} id 0 slave mode ip")
        if table:
            _cli(vpp, f"set interface ip table {name} {table}")
        _cli(vpp, f"set interface state {name} up")
        if table:
            # What arrives for the server pod is counted (the interface's rx counter) and dropped
            # by the FIB, not answered: the cheapest sink, so the peer keeps up with the node.
            _cli(vpp, f"set interface ip address {name} {SINK_ADDRESS}/32")
            _cli(vpp, f"ip route add {address}/32 table {table} via drop")
        else:
            _cli(vpp, f"set interface ip address {name} {address}/32")
            _cli(vpp, f"ip route add 0.0.0.0/0 table {table} via {name}")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        states = [_cli(vpp, f"show memif {n}").lower().replace("disconnected", "") for n in (CLIENT_IF, SERVER_IF)]
        if all("connected" in st for st in states):
            return proc, vpp
        time.sleep(0.1)
    raise EnvError(f"the peer VPP's memifs did not connect to the node's: {_cli(vpp, 'show memif').strip()[:600]}")
