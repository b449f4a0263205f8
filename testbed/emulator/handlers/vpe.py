"""memclnt and vpe basics: the socket handshake, ping, version, message ranges.

Modelled on vlibmemory/socket_api.c (sockclnt_create/delete), memclnt_api.c
(get_first_msg_id, api_versions, get_api_json, keepalive), vlib_api.c
(control_ping) and vpp/api/api.c (show_version).
"""
from __future__ import annotations

import time

from vppagent.vpp.retvals import Retval

from ..registry import HandlerTable

HANDLERS = HandlerTable("vpe")

# What show_version says: VPP's version, marked so nobody mistakes it for VPP.
VERSION = "26.06-emulator"


@HANDLERS.handler("sockclnt_create")
def sockclnt_create(emu, mp):
    conn = emu.session.connection
    conn.name = mp.name
    table = emu.api.message_table()
    return {"response": 0, "index": conn.client_index, "count": len(table),
            "message_table": table}


@HANDLERS.handler("sockclnt_delete")
def sockclnt_delete(emu, mp):
    session = emu.session
    if session.transport.registration(mp.client_index) is None:
        return {}  # VPP returns without deleting; the reply has nowhere to go
    # VPP answers 1 (not 0) when it found the registration, -1 otherwise.
    return {"response": 1 if session.delete_registration(mp.index) else -1}


@HANDLERS.handler("control_ping")
def control_ping(emu, mp):
    return {"vpe_pid": emu.pid}


@HANDLERS.handler("memclnt_keepalive")
def memclnt_keepalive(emu, mp):
    return {}


@HANDLERS.handler("show_version")
def show_version(emu, mp):
    return {
        "program": "vpe",
        "version": VERSION,
        "build_date": "emulated",
        "build_directory": "testbed.emulator (test double, no packets flow)",
    }


@HANDLERS.handler("show_threads")
def show_threads(emu, mp):
    threads = [{"id": 0, "name": "vpp_main", "type": "", "pid": emu.pid, "cpu_id": 0, "core": 0, "cpu_socket": 0}]
    threads += [{"id": n, "name": f"vpp_wk_{n - 1}", "type": "workers", "pid": emu.pid, "cpu_id": n, "core": n,
                 "cpu_socket": 0} for n in range(1, emu.config.workers + 1)]
    return {"count": len(threads), "thread_data": threads}


@HANDLERS.handler("show_vpe_system_time")
def show_vpe_system_time(emu, mp):
    return {"vpe_system_time": time.time()}


@HANDLERS.handler("get_first_msg_id")
def get_first_msg_id(emu, mp):
    first = emu.api.range_first_id(mp.name)
    if first is None:
        # VPP answers INVALID_VALUE with first_msg_id ~0.
        return {"retval": int(Retval.INVALID_VALUE), "first_msg_id": 0xFFFF}
    return {"first_msg_id": first}


@HANDLERS.handler("api_versions")
def api_versions(emu, mp):
    versions = [{"major": f.version[0], "minor": f.version[1], "patch": f.version[2],
                 "name": f.module} for f in emu.api.files]
    return {"count": len(versions), "api_versions": versions}


@HANDLERS.handler("get_api_json")
def get_api_json(emu, mp):
    return {"json": "[" + ",".join(emu.api.json_texts) + "]"}
