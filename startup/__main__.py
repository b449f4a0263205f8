"""``python -m startup render|run|restore|status``: node bring-up from the command line.

Run it inside the node's network namespace. Taking over or restoring in the
host's own netns is refused unless ``--i-know-this-is-the-host`` is given.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vppagent import logs

from . import drivers, manager, status, supervisor, template
from .errors import StartupError
from .hostpath import HostPathNames


def _default_api_dir(vpp_bin: str | None) -> str | None:
    if vpp_bin:
        d = Path(vpp_bin).resolve().parent.parent / "share" / "vpp" / "api"
        if d.is_dir():
            return str(d)
    return "/usr/share/vpp/api" if Path("/usr/share/vpp/api").is_dir() else None


def _config(a: argparse.Namespace) -> manager.BringUpConfig:
    return manager.BringUpConfig(
        state_dir=Path(a.state_dir), vpp_bin=a.vpp_bin, api_dir=a.api_dir or _default_api_dir(a.vpp_bin),
        uplink=a.uplink, driver=a.driver, template=Path(a.template) if a.template else None,
        workers=a.workers, names=HostPathNames(a.host_if, a.vpp_if, a.quarantine_if),
        allow_host=a.i_know_this_is_the_host)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m startup", description=__doc__)
    p.add_argument("--state-dir", default="/var/lib/vppagent/startup",
                   help="snapshot, status.json and VPP's work directory")
    p.add_argument("--vpp-bin", default="/usr/bin/vpp")
    p.add_argument("--api-dir", default=None, help="VPP API JSON directory (default: next to --vpp-bin)")
    p.add_argument("--uplink", default=None, help="uplink interface (default: the default route's)")
    p.add_argument("--driver", default="af_packet",
                   help=f"one of {', '.join(drivers.DRIVERS)} or auto (order: {', '.join(drivers.AUTO_ORDER)})")
    p.add_argument("--template", default=None, help=f"startup.conf template (default {template.DEFAULT_TEMPLATE})")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--host-if", default=HostPathNames.host_if)
    p.add_argument("--vpp-if", default=HostPathNames.vpp_if)
    p.add_argument("--quarantine-if", default=HostPathNames.quarantine)
    p.add_argument("--i-know-this-is-the-host", action="store_true",
                   help="allow taking over / restoring in the host's own network namespace")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("render", help="print the rendered startup.conf")
    sub.add_parser("run", help="snapshot, start VPP, take over, supervise until SIGTERM, restore")
    sub.add_parser("restore", help="restore the snapshot a crashed run left")
    sub.add_parser("status", help="print status.json")
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    logs.setup("debug" if a.verbose else "info")
    try:
        if a.cmd == "render":
            cfg = _config(a)
            sys.stdout.write(template.render_file(
                cfg.template, template.RenderInput(cfg.vpp_workdir, workers=cfg.workers)))
            return 0
        if a.cmd == "status":
            st = status.read(Path(a.state_dir))
            print(json.dumps(st, indent=1) if st else "{}")
            return 0 if st else 1
        if a.cmd == "restore":
            done = manager.restore(Path(a.state_dir), allow_host=a.i_know_this_is_the_host)
            print("restored" if done else "nothing to restore")
            return 0
        return supervisor.run(_config(a))
    except StartupError as e:
        print(f"error: {type(e).__name__}: {e}" + ("" if e.changed else " (nothing was changed)"),
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
