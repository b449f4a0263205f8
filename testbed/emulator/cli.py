"""``vppagent-emulator``: run the VPP API emulator as a process.

    vppagent-emulator --socket PATH [--api-dir DIR] [--no-vhost-net]
                      [--host-interface NAME ...] [--runtime-dir DIR] [--log-level LEVEL]

The API directory defaults to $VPPAGENT_API_DIR, else /usr/share/vpp/api.
SIGHUP simulates a VPP restart (state wiped, clients disconnected);
SIGTERM/SIGINT stop it and remove the socket file. Bad input (no definition
directory, socket path not creatable, socket already served by a live
process) ends it with one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Sequence

from vppagent.vpp.errors import ApiDefinitionsError

from .server import Emulator, EmulatorError

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vppagent-emulator",
        description="VPP API emulator: a test double of VPP serving VPP's binary API "
                    "on a unix socket. No packets flow through it.",
    )
    p.add_argument("--socket", required=True, help="path of the API socket to serve")
    p.add_argument("--api-dir", default=None,
                   help="VPP API definitions (default: $VPPAGENT_API_DIR, else /usr/share/vpp/api)")
    p.add_argument("--no-vhost-net", action="store_true",
                   help="behave like a node without /dev/vhost-net: tap creation fails")
    p.add_argument("--host-interface", action="append", default=[], metavar="NAME",
                   help="treat this host interface as existing for af_packet (repeatable)")
    p.add_argument("--runtime-dir", default="/run/vpp",
                   help="VPP runtime directory, for relative memif socket names")
    p.add_argument("--log-level", default="WARNING",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        emu = Emulator(args.socket, args.api_dir, no_vhost_net=args.no_vhost_net,
                       host_interfaces=args.host_interface, runtime_dir=args.runtime_dir)
    except ApiDefinitionsError as e:
        print(f"vppagent-emulator: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT

    signal.signal(signal.SIGHUP, lambda *_: emu.request_restart())
    signal.signal(signal.SIGTERM, lambda *_: emu.request_stop())
    signal.signal(signal.SIGINT, lambda *_: emu.request_stop())
    try:
        emu.listen()
    except EmulatorError as e:
        print(f"vppagent-emulator: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"VPP API emulator (test double, no packets flow) listening on {args.socket}",
          flush=True)
    try:
        emu.serve()
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
