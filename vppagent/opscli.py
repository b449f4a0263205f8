"""The operator's commands: ``vppagent status`` and ``vppagent show pods|services|policies|peers|encryption``.

Owns: reading the running agent over its status socket and VPP over its
API socket, and printing both as a table or JSON (``-o json``). Either side
may be unreachable: the command prints what it could read, names the one it
could not (path and reason), and exits 1; it exits 0 only when both answered.

``add_commands`` adds the subcommands to ``vppagent``'s parser; ``main``
runs them standalone (``python -m vppagent.opscli``).

Must not touch: anything it reads (status is read-only, VPP gets dumps only).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from .ops.status_server import DEFAULT_STATUS_SOCKET, StatusFailed, StatusUnreachable, fetch
from .ops.views import TOPICS

EXIT_OK = 0
EXIT_UNREACHABLE = 1
POD_TAG_PREFIX = "vppagent:pod:"  # vppagent.cni.pod_interface_kind.TAG_PREFIX


@dataclass
class Reading:
    """What one command could read: data per side, and why a side failed."""

    agent: Any = None
    vpp: Any = None
    problems: dict[str, str] = field(default_factory=dict)


def read_agent(socket_path: str, route: str, timeout: float) -> tuple[Any, str | None]:
    try:
        return fetch(socket_path, route, timeout), None
    except StatusUnreachable as e:
        return None, f"unreachable at {e.path}: {e.reason}"
    except StatusFailed as e:
        return None, f"answered with an error at {e.path} (HTTP {e.code}): {e.error}"


def read_vpp(socket_path: str, api_dir: str | None, timeout: float) -> tuple[Any, str | None]:
    """VPP's version and interfaces (dumps only)."""
    from .vpp import interfaces
    from .vpp.client import VppClient
    from .vpp.api_defs import load_definitions
    from .vpp.errors import ApiDefinitionsError, VppError

    if not os.path.exists(socket_path):
        return None, f"unreachable at {socket_path}: the socket does not exist (is VPP running?)"
    try:
        defs = load_definitions(api_dir)
    except ApiDefinitionsError as e:
        return None, f"not read: cannot load VPP's API definitions ({e}); set --api-dir"
    try:
        with VppClient(socket_path, name="vppagent-cli", timeout=timeout, definitions=defs).connect() as vpp:
            version = vpp.call("show_version")
            ifs = interfaces.dump(vpp)
    except (VppError, OSError) as e:
        return None, f"unreachable at {socket_path}: {e}"
    return {"socket": socket_path, "version": str(version.version).strip("\x00"), "pid": vpp.vpe_pid,
            "interfaces": [{"sw_if_index": i.sw_if_index, "name": i.name, "tag": i.tag,
                            "admin_up": i.admin_up, "link_up": i.link_up, "mtu": i.mtu} for i in ifs]}, None


def gather(args: argparse.Namespace) -> Reading:
    r = Reading()
    route = "/v1/status" if args.ops_cmd == "status" else f"/v1/show/{args.topic}"
    r.agent, problem = read_agent(args.status_socket, route, args.timeout)
    if problem:
        r.problems["agent"] = problem
    r.vpp, problem = read_vpp(args.vpp_socket, args.api_dir, args.timeout)
    if problem:
        r.problems["vpp"] = problem
    return r


def merge_pods(rows: Sequence[Mapping[str, Any]] | None, vpp: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The agent's pod rows with VPP's view of each interface (by sw_if_index); VPP-only pods by tag."""
    by_index = {i["sw_if_index"]: i for i in (vpp or {}).get("interfaces", [])}
    out = []
    seen: set[int] = set()
    for row in rows or []:
        r = dict(row)
        if vpp is not None:
            i = by_index.get(r.get("sw_if_index"))
            r["vpp"] = "missing" if i is None else ("up" if i["admin_up"] and i["link_up"] else "down")
            if i is not None:
                seen.add(i["sw_if_index"])
        out.append(r)
    if rows is None and vpp is not None:  # agent unreachable: what VPP alone knows
        for i in by_index.values():
            if i["tag"].startswith(POD_TAG_PREFIX) and i["sw_if_index"] not in seen:
                out.append({"interface": i["name"], "tag": i["tag"], "sw_if_index": i["sw_if_index"],
                            "vpp": "up" if i["admin_up"] and i["link_up"] else "down"})
    return out


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v) or "-"
    return str(v) if v != "" else "-"


def table(rows: Sequence[Mapping[str, Any]], out: TextIO) -> None:
    if not rows:
        print("(none)", file=out)
        return
    cols: list[str] = []
    for r in rows:
        cols.extend(c for c in r if c not in cols)
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths)).rstrip(), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip(), file=out)


def _status_lines(r: Reading) -> list[str]:
    lines = []
    a = r.agent
    if a is not None:
        rec = a["reconcile"]
        lines += [f"node:        {a['node']}",
                  f"agent:       {'ready' if a['ready'] else 'NOT READY'} ({a['ready_reason']}); "
                  f"{'live' if a['live'] else 'NOT LIVE'} ({a['live_reason']})",
                  f"vpp (agent): {'connected' if a['vpp']['connected'] else 'NOT CONNECTED'} to "
                  f"{a['vpp']['socket']}, {a['vpp']['api_calls']} API calls",
                  f"reconcile:   {rec['passes']} passes, {rec['resyncs']} read-backs, {rec['applied']} applied, "
                  f"{rec['desired']} desired, {rec['failed']} failed",
                  f"features:    {', '.join(a['features']) or '-'}",
                  f"encryption:  {a['encryption']}",
                  "counts:      " + ", ".join(f"{k} {v}" for k, v in a["counts"].items())]
        for f in a.get("failures", []):
            lines.append(f"  failed: {f['object']} ({f['op']}): {f['error']}")
    if r.vpp is not None:
        pods = sum(1 for i in r.vpp["interfaces"] if i["tag"].startswith(POD_TAG_PREFIX))
        lines.append(f"vpp:         {r.vpp['version']} at {r.vpp['socket']} (pid {r.vpp['pid']}), "
                     f"{len(r.vpp['interfaces'])} interfaces, {pods} pod interfaces")
    return lines


def render(args: argparse.Namespace, r: Reading, out: TextIO, err: TextIO) -> int:
    if args.ops_cmd == "status":
        data: Any = {"agent": r.agent, "vpp": r.vpp}
    elif args.topic == "pods":
        data = merge_pods(r.agent, r.vpp)
    else:
        data = r.agent if r.agent is not None else []
    if args.output == "json":
        doc = {"data": data, "unreachable": r.problems} if args.ops_cmd == "show" else \
            {**data, "unreachable": r.problems}
        json.dump(doc, out, indent=2, sort_keys=True, default=str)
        out.write("\n")
    elif args.ops_cmd == "status":
        for line in _status_lines(r):
            print(line, file=out)
    elif r.agent is not None or (args.topic == "pods" and data):
        table(data, out)
    for side, why in sorted(r.problems.items()):
        print(f"vppagent {args.ops_cmd}: {side} {why}", file=err)
    return EXIT_UNREACHABLE if r.problems else EXIT_OK


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    return render(args, gather(args), out or sys.stdout, err or sys.stderr)


def _env(name: str, default: str | None) -> str | None:
    # The DaemonSet's ConfigMap sets every key, unset ones as "": the same as absent.
    return os.environ.get(name) or default


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.add_argument("--status-socket", default=_env("VPPAGENT_STATUS_SOCKET", DEFAULT_STATUS_SOCKET),
                   help="the agent's status socket")
    p.add_argument("--vpp-socket", default=_env("VPPAGENT_VPP_SOCKET", "/run/vpp/api.sock"),
                   help="VPP's binary API socket")
    p.add_argument("--api-dir", default=_env("VPPAGENT_API_DIR", None),
                   help="VPP's *.api.json directory (default /usr/share/vpp/api)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each side")


def add_commands(sub: Any) -> None:
    """Add ``status`` and ``show`` to an argparse subparsers object (``func`` set to ``run``)."""
    s = sub.add_parser("status", help="the running agent's and VPP's state on this node")
    _common(s)
    s.set_defaults(func=run, ops_cmd="status")
    sh = sub.add_parser("show", help="what the agent programs: " + ", ".join(TOPICS))
    sh.add_argument("topic", choices=TOPICS)
    _common(sh)
    sh.set_defaults(func=run, ops_cmd="show")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vppagent", description="operator commands of the VPP node agent")
    add_commands(ap.add_subparsers(dest="cmd", required=True))
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
