"""Two nodes, locally: two private VPPs joined by a veth underlay, one pod netns behind each.

Reuses the connectivity tests' topology (tests/connectivity/realnet.py) and
programs node-to-node connectivity (flat, ipip, vxlan; IPsec or WireGuard
on top) with the agent's NodeConnectivity feature, as
perf/encryption_bench.py does. The client pod is behind node-a, the server
behind node-b; both VPPs are measured.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from perf.runner.envs.common import EnvUnavailable, Setup, need_vpp, rx_packets, set_offloads
from perf.runner.scenario import Scenario
from testbed.targets import api_dir


@contextmanager
def two_node_env(sc: Scenario) -> Iterator[Setup]:
    binary = need_vpp()
    from perf.encryption_bench import Clock, real_agents, real_clear, real_cluster, real_program
    from testbed.realnet import RealTopology

    gso = sc.pod_offloads is not False  # the agent's default: on
    plugin_dirs: tuple[Path, ...] = ()
    if gso:  # pods that keep their offloads get kpod's fix-ups, as the agent gives them
        from testbed import plugins
        from testbed.targets import Unavailable

        try:
            plugin_dirs = plugins.plugin_dirs("kpod")
        except Unavailable as e:
            raise EnvUnavailable(f"pod_offloads needs the kpod plugin: {e}") from e
    topo = RealTopology(api_dir(), binary, plugin_dirs=plugin_dirs, pod_gso_fix=gso).start()
    work = Path(tempfile.mkdtemp(prefix="vpa-perf-2n-"))
    try:
        for node in topo.nodes.values():
            set_offloads(node.pod_ns, gso)
        agents = real_agents(topo, work, sc.connectivity, Clock())
        real_program(agents, real_cluster(sc.encryption))
        a, b = topo.nodes["node-a"], topo.nodes["node-b"]
        topo.exec("node-a", "ping", "-c", "3", "-i", "0.2", "-W", "2", b.pod_ip)  # ARP, handshakes
        try:
            yield Setup(client_prefix=["ip", "netns", "exec", a.pod_ns], server_prefix=["ip", "netns", "exec", b.pod_ns],
                        target_ip=b.pod_ip, server_ip=b.pod_ip, server_rx_packets=lambda: rx_packets(b.pod_ns),
                        vpps=[n.vpp for n in topo.nodes.values()],
                        pids={"vpp": [n.vpp_proc.pid for n in topo.nodes.values()], "agent": [os.getpid()]},
                        notes={"connectivity": sc.connectivity, "encryption": sc.encryption, "mtu": 1400,
                               "pod_offloads": sc.offloads_label,
                               "agent_cpu": "the runner process, which programs both nodes"})
        finally:
            real_clear(agents)
    finally:
        topo.close()
        shutil.rmtree(work, ignore_errors=True)
