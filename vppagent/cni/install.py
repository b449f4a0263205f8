"""``vppagent-cni install``: puts the plugin where a container runtime finds it.

Owns two files on the node: the launcher ``BIN_DIR/vppagent-cni`` (a small
shell script that execs the plugin with a chosen Python) and the network
configuration ``CONF_DIR/10-vppagent.conflist``. Both are written
atomically (temp file in the same directory, fsync, rename, fsync of the
directory), so a runtime never reads half a file, and a rerun replaces them.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from vppagent import atomic
from .plugin import DEFAULT_AGENT_SOCKET, DEFAULT_TIMEOUT_SECONDS

log = logging.getLogger(__name__)

PLUGIN_TYPE = "vppagent-cni"
CONFLIST_NAME = "10-vppagent.conflist"
CONFLIST_VERSION = "1.0.0"


class InstallError(RuntimeError):
    """The install could not be done; nothing half-written is left behind."""


@dataclass(frozen=True)
class InstallOptions:
    bin_dir: Path
    conf_dir: Path
    agent_socket: str = DEFAULT_AGENT_SOCKET
    name: str = "vppagent"
    mtu: int | None = None
    python: str = sys.executable
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Installed:
    launcher: Path
    conflist: Path


def launcher_text(python: str) -> str:
    return ("#!/bin/sh\n"
            "# vppagent CNI plugin launcher, written by `vppagent-cni install`.\n"
            f"exec {shlex.quote(python)} -m vppagent.cni.plugin \"$@\"\n")


def conflist(opts: InstallOptions) -> dict:
    timeout = opts.timeout_seconds
    plugin: dict = {"type": PLUGIN_TYPE, "agentSocket": opts.agent_socket,
                    "timeoutSeconds": int(timeout) if float(timeout).is_integer() else timeout}
    if opts.mtu is not None:
        plugin["mtu"] = opts.mtu
    return {"cniVersion": CONFLIST_VERSION, "name": opts.name, "plugins": [plugin]}


def _validate(opts: InstallOptions) -> None:
    if not os.path.isabs(opts.python) or not os.access(opts.python, os.X_OK):
        raise InstallError(f"--python {opts.python!r} is not an absolute path to an executable")
    if not os.path.isabs(opts.agent_socket):
        raise InstallError(f"--agent-socket {opts.agent_socket!r} is not an absolute path")
    if not opts.timeout_seconds > 0:
        raise InstallError(f"--timeout-seconds {opts.timeout_seconds} is not positive")
    if opts.mtu is not None and not 68 <= opts.mtu <= 65535:
        raise InstallError(f"--mtu {opts.mtu} is not within 68..65535")
    if not opts.name or not (opts.name[0].isalnum() and
                             all(c.isalnum() or c in "_.-" for c in opts.name)):
        raise InstallError(f"--name {opts.name!r}: alphanumerics, '_', '.' and '-' only, "
                           "starting with an alphanumeric")


def install(opts: InstallOptions) -> Installed:
    _validate(opts)
    launcher = opts.bin_dir / PLUGIN_TYPE
    conf = opts.conf_dir / CONFLIST_NAME
    try:
        # The binary first: a runtime that sees the conflist must find the plugin.
        for path in (launcher, conf):
            path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(launcher, launcher_text(opts.python).encode(), 0o755)
        atomic.write_bytes(conf, (json.dumps(conflist(opts), indent=2) + "\n").encode(), 0o644)
    except OSError as e:
        raise InstallError(f"cannot write {e.filename}: {e.strerror}") from e
    log.info("installed CNI plugin", extra={"launcher": str(launcher), "conflist": str(conf)})
    return Installed(launcher=launcher, conflist=conf)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vppagent-cni install",
                                description="Install the vppagent CNI launcher and conflist.")
    p.add_argument("--bin-dir", required=True, type=Path, help="CNI plugin directory (/opt/cni/bin)")
    p.add_argument("--conf-dir", required=True, type=Path, help="CNI config directory (/etc/cni/net.d)")
    p.add_argument("--agent-socket", default=DEFAULT_AGENT_SOCKET, help="the agent's CNI gRPC socket")
    p.add_argument("--name", default="vppagent", help="network name in the conflist")
    p.add_argument("--mtu", type=int, default=None, help="pod interface MTU (default: the agent's)")
    p.add_argument("--python", default=sys.executable,
                   help="interpreter that runs the plugin (default: this one)")
    p.add_argument("--timeout-seconds", type=float, default=DEFAULT_TIMEOUT_SECONDS,
                   help="gRPC deadline of one plugin call")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    opts = InstallOptions(bin_dir=args.bin_dir, conf_dir=args.conf_dir,
                          agent_socket=args.agent_socket, name=args.name, mtu=args.mtu,
                          python=args.python, timeout_seconds=args.timeout_seconds)
    try:
        done = install(opts)
    except InstallError as e:
        print(f"vppagent-cni install: {e}", file=sys.stderr)
        return 1
    print(f"installed {done.launcher} and {done.conflist}")
    return 0
