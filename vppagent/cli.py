"""The ``vppagent`` command: ``check``, ``run`` (the node agent), and the operator's
``status`` and ``show`` (``opscli``).

Owns argument parsing and turning every expected failure into one clear line
on stderr and a non-zero exit code; tracebacks are for bugs only.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from . import logs
from startup.vpp_process import VppStartError

from .cni.linux import LinuxNetError
from .vpp.errors import VppError

EXIT_USAGE = 2
EXIT_FAILED = 1


def _check(args: argparse.Namespace) -> int:
    from .vpp.client import VppClient

    t0 = time.perf_counter()
    with VppClient(args.socket, args.api_dir, timeout=args.timeout).connect() as vpp:
        version = vpp.call("show_version")
        ms = (time.perf_counter() - t0) * 1000
        print(f"VPP {version.version} at {args.socket}: compatible "
              f"(connect and check {ms:.0f} ms, vpe pid {vpp.vpe_pid})")
    return 0


def _run(args: argparse.Namespace) -> int:
    """The node agent: runs until SIGTERM/SIGINT, then exits leaving VPP as programmed."""
    import signal

    from prometheus_client import CollectorRegistry

    from .agent import Agent, FatalAgentError
    from .config import ConfigError, load
    from .crash import CrashPoints
    from .health import Health, HealthServer
    from .ops import metrics as ops_metrics
    from .ops.status_server import StatusServer, StatusServerError
    from .sources import EventRecorder, KubeConfigError, load_api_client

    try:
        cfg = load(config_file=args.config)
        crash = CrashPoints.from_env(os.environ)
    except (ConfigError, ValueError) as e:
        print(f"vppagent run: {e}", file=sys.stderr)
        return EXIT_USAGE
    logs.setup(cfg.log_level)
    try:
        api = load_api_client(cfg.kubeconfig)
    except KubeConfigError as e:
        print(f"vppagent run: {e}", file=sys.stderr)
        return EXIT_FAILED
    health = Health()
    registry = CollectorRegistry()
    try:
        server = HealthServer(health, cfg.health_address, cfg.health_port, registry).start()
    except OSError as e:
        print(f"vppagent run: cannot serve health on {cfg.health_address}:{cfg.health_port}: "
              f"{e.strerror or e}", file=sys.stderr)
        return EXIT_FAILED
    recorder = EventRecorder(api, host=cfg.node_name).start()
    status: StatusServer | None = None
    ops: ops_metrics.OpsMetrics | None = None
    try:
        agent = Agent(cfg, api_client=api, recorder=recorder, health=health, registry=registry, crash=crash)
        ops = ops_metrics.register(registry, agent, stats_socket=cfg.stats_socket)
        status = StatusServer.for_agent(cfg.status_socket, agent).start()
        signal.signal(signal.SIGTERM, lambda *_: agent.stop(from_signal=True))
        signal.signal(signal.SIGINT, lambda *_: agent.stop(from_signal=True))
        agent.run()
    except StatusServerError as e:
        print(f"vppagent run: {e}", file=sys.stderr)
        return EXIT_FAILED
    except FatalAgentError as e:
        print(f"vppagent run: {e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if status is not None:
            status.stop()
        if ops is not None and ops.source is not None:
            ops.source.close()
        server.stop()
        recorder.stop(timeout=1)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vppagent", description="Kubernetes node agent for a VPP data plane")
    ap.add_argument("--log-level", default=os.environ.get("VPPAGENT_LOG_LEVEL", "warning"))
    sub = ap.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("check", help="connect to VPP and check API compatibility")
    c.add_argument("--socket", default=os.environ.get("VPPAGENT_VPP_SOCKET", "/run/vpp/api.sock"))
    c.add_argument("--api-dir", default=os.environ.get("VPPAGENT_API_DIR"))
    c.add_argument("--timeout", type=float, default=5.0)
    c.set_defaults(func=_check)

    r = sub.add_parser("run", help="run the node agent (configuration: environment, --config YAML)")
    r.add_argument("--config", default=None,
                   help="YAML configuration file (default: $VPPAGENT_CONFIG); environment variables win")
    r.set_defaults(func=_run)

    from . import opscli

    opscli.add_commands(sub)

    args = ap.parse_args(argv)
    logs.setup(args.log_level)
    try:
        return args.func(args)
    except (VppError, VppStartError, LinuxNetError) as e:
        print(f"vppagent {args.cmd}: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
