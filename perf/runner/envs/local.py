"""One node, locally: a private real VPP, the agent in this process, two netns pods attached through CNI.

The agent is started the way the real-VPP pod tests start it (fake
Kubernetes API over real HTTP, CNI gRPC backend on a unix socket); the pods
are real netns whose eth0 veth is attached to VPP with af_packet by the
agent. Scenario switches: ``services`` (service NAT on the pod interfaces,
one ClusterIP backed by the server pod), ``policy`` (a NetworkPolicy on the
server pod allowing the client; the kpol plugin when ``testbed.plugins``
can provide it, else the ACL fallback) and ``target:
service`` (the client sends to the VIP). tun pods need /dev/vhost-net
(refused with the reason otherwise). memif pods share one peer VPP holding
both pods' memifs (pod_vpp.py), driven by its packet generator
(loadgen/vpp_pg.py).
"""
from __future__ import annotations

import ipaddress
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from perf.runner.envs.common import EnvError, EnvUnavailable, Setup, need_vpp, netns_prefix, rx_packets, set_offloads
from perf.runner.scenario import Scenario
from testbed.agent_runner import NODE

VIP = "10.96.0.60"
SERVER_LABELS = {"app": "perf-server"}
CLIENT_LABELS = {"app": "perf-client"}


def _wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise EnvError(f"timed out after {timeout:g} s waiting for {what}")


def _check_pod_interface(sc: Scenario) -> None:
    if sc.pod_interface == "tun" and not os.path.exists("/dev/vhost-net"):
        raise EnvUnavailable("tun pods need /dev/vhost-net (VPP's tap v2), which this machine lacks")
    if sc.pod_interface == "memif" and any(ld.tool != "vpp-pg" for ld in sc.load):
        raise EnvUnavailable("memif pods talk to a user-space peer, not to the kernel: iperf3 cannot drive "
                             "them (use load tool vpp-pg)")


def _plugin_dirs(sc: Scenario) -> tuple[Path, ...]:
    """Our plugins the scenario wants: kpol for policy (else the ACL fallback), kpod for pods that
    keep their offloads (else the agent warns and runs without the fix-up); () when none can be had."""
    from testbed import plugins
    from testbed.targets import Unavailable

    names = [n for n, wanted in (("kpol", sc.policy), ("kpod", sc.pod_offloads is not False)) if wanted]
    try:
        return plugins.plugin_dirs(*names) if names else ()
    except Unavailable:
        return ()


@contextmanager
def local_env(sc: Scenario) -> Iterator[Setup]:
    _check_pod_interface(sc)
    binary = need_vpp()
    from testbed.fakekube import FakeKube
    from testbed.fakekube import objects as k
    from testbed.podnet import Pods, container_id, running_agent
    from vppagent.config import ConfigError

    plugin_dirs = _plugin_dirs(sc)
    with_kpol = sc.policy and bool(plugin_dirs)
    pods = Pods()
    with ExitStack() as stack:
        stack.callback(pods.close)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vpa-perf-")))
        fake = stack.enter_context(FakeKube(bookmark_interval=0.2))
        fake.add(k.node(NODE, pod_cidrs=["10.244.1.0/24"], internal_ip="192.168.0.1"))
        fake.add(k.namespace("default"))
        settings = {"VPPAGENT_SERVICES": str(sc.services).lower(), "VPPAGENT_POLICIES": str(sc.policy).lower(),
                    # memif pods keep a veth eth0; the memif comes on top (annotation)
                    "VPPAGENT_POD_INTERFACE": "veth" if sc.pod_interface == "memif" else sc.pod_interface,
                    "VPPAGENT_POD_MTU": str(sc.mtu), "VPPAGENT_POD_AF_PACKET_VERSION": str(sc.af_packet_version),
                    # pod_offloads: false asks the agent to turn them off (config pod_offloads)
                    "VPPAGENT_POD_OFFLOADS": str(sc.pod_offloads is not False).lower()}
        try:
            handle = stack.enter_context(running_agent(vpp_bin=binary, fake=fake, plugin_dirs=plugin_dirs,
                                                       workers=0 if sc.threads == "main" else 1, **settings))
        except ConfigError as e:
            raise EnvError(f"agent configuration for {sc.name}: {e}") from e
        except AssertionError as e:
            raise EnvError(f"the agent failed to start: {e}") from e
        agent, vpp = handle.agent, handle.vpp
        assert handle.target is not None and handle.target.proc is not None
        vpp_pid = handle.target.proc.pid

        ips, nss, memif_ips = {}, {}, {}
        memif = sc.pod_interface == "memif"
        for n, (name, labels) in enumerate((("client", CLIENT_LABELS), ("server", SERVER_LABELS)), start=1):
            pod_name = f"perf-{name}"
            nss[name] = pods.netns(n)
            if memif:  # the agent reads the annotation from the pod object at ADD
                fake.add(_with_memif(k.pod(pod_name, "default", node=NODE, labels=labels)))
                _wait(lambda: ("default", pod_name) in agent.pod_network._pods, 15, f"pod {pod_name} in the agent")
            res, err = handle.add(container_id(n), nss[name], pod=pod_name)
            if err is not None:
                raise EnvError(f"CNI ADD of pod {name}: {err}")
            stack.callback(handle.delete, container_id(n), nss[name], pod=pod_name)
            ips[name], memif_ip = _addresses(res)
            obj = k.pod(pod_name, "default", node=NODE, ips=[ips[name]], labels=labels)
            if memif:
                fake.modify(_with_memif(obj))
                if memif_ip is None:
                    raise EnvError(f"pod {name} got no memif0 address: {res}")
                memif_ips[name] = memif_ip
            else:
                fake.add(obj)
            set_offloads(Path(nss[name]).name, sc.pod_offloads is not False)
        placed = _place_pods(vpp, sc.threads, [container_id(1), container_id(2)])
        pod_vpps: dict[str, Any] = {}
        pod_pids: list[int] = []
        if memif:
            from perf.runner.envs.pod_vpp import start_traffic_peer
            from perf.runner.loadgen import vpp_pg

            peer_proc, pod_vpps["peer"] = start_traffic_peer(
                stack, binary, tmp / "memif-peer", *((Path(nss[n]).name, memif_ips[n]) for n in ("client", "server")))
            pod_pids.append(peer_proc.pid)
            vpp_pg.prepare(pod_vpps["peer"])
        if sc.services:
            _add_service(fake, k, ips["server"])
            from vppagent.vpp import cnat
            _wait(lambda: any(str(t.vip.address) == VIP for t in cnat.dump_translations(vpp)), 20,
                  "the ClusterIP translation")
        policy_backend = None
        if sc.policy:
            fake.add(k.network_policy("perf-allow-client", "default", pod_selector={"matchLabels": SERVER_LABELS},
                                      ingress=[{"from": [{"podSelector": {"matchLabels": CLIENT_LABELS}}],
                                                "ports": [{"protocol": "TCP", "port": 5201},
                                                          {"protocol": "UDP", "port": 5201}]}]))
            policy_backend = _wait_policy(vpp, ips["client"], with_kpol)
        if handle.errors:
            raise EnvError(f"the agent failed: {handle.errors[0]!r}")
        client_ns, server_ns = (Path(nss[n]).name for n in ("client", "server"))
        target = VIP if sc.target == "service" else (memif_ips or ips)["server"]
        # ARP and the agent's last touches settle before measuring.
        if not memif:
            subprocess.run(netns_prefix(client_ns) + ["ping", "-c", "2", "-i", "0.2", "-W", "2", target],
                           capture_output=True, timeout=15)
        yield Setup(client_prefix=netns_prefix(client_ns), server_prefix=netns_prefix(server_ns),
                    target_ip=target, server_ip=ips["server"], server_rx_packets=lambda: rx_packets(server_ns),
                    vpps=[vpp], pids={"vpp": [vpp_pid], "agent": [os.getpid()],
                                      **({"pod_vpp": pod_pids} if pod_pids else {})},
                    pod_vpps=pod_vpps, pod_ips=memif_ips,
                    notes={"pod_interface": sc.pod_interface, "af_packet_version": sc.af_packet_version,
                           "mtu": sc.mtu, "pod_offloads": sc.offloads_label,
                           "services": sc.services, "policy_backend": policy_backend,
                           "threads": f"{sc.threads}: client on thread {placed[0]}, server on thread {placed[1]}",
                           "agent_cpu": "the runner process, which hosts the agent's threads"})
        if handle.errors:
            raise EnvError(f"the agent failed during the run: {handle.errors[0]!r}")


def _place_pods(vpp: Any, threads: str, cids: list[str]) -> list[int]:
    """Puts the client's and the server's interface on the threads ``threads`` names; the thread
    each is polled by, read back from VPP."""
    from testbed import threads as vpp_threads
    from vppagent.cni import pod_interface_kind
    from vppagent.vpp import interfaces

    by_tag = {i.tag: i.sw_if_index for i in interfaces.dump(vpp)}
    sws = [by_tag[pod_interface_kind.TAG_PREFIX + pod_interface_kind.interface_name(cid, "eth0")] for cid in cids]
    if threads == "split":
        vpp_threads.place(vpp, sws[0], 1)
        vpp_threads.place(vpp, sws[1], vpp_threads.MAIN)
    placed = [vpp_threads.thread_of(vpp, sw) for sw in sws]
    wanted = {"main": [0, 0], "worker": [1, 1], "split": [1, 0]}[threads]
    if placed != wanted:
        raise EnvError(f"pods polled by threads {placed}, wanted {wanted} ({threads})")
    return placed


def _with_memif(obj: dict[str, Any]) -> dict[str, Any]:
    from vppagent.cni.pods import MEMIF_ANNOTATION

    obj["metadata"].setdefault("annotations", {})[MEMIF_ANNOTATION] = "true"
    return obj


def _addresses(result: dict[str, Any]) -> tuple[str, str | None]:
    """The pod's eth0 address and its memif0 address (None without memif) from a CNI result."""
    names = [i["name"] for i in result["interfaces"]]
    main, memif = None, None
    for ip in result["ips"]:
        addr = str(ipaddress.ip_interface(ip["address"]).ip)
        idx = ip.get("interface")
        if idx is not None and names[idx] == "memif0":
            memif = memif or addr
        else:
            main = main or addr
    if main is None:
        raise EnvError(f"no pod address in the CNI result: {result}")
    return main, memif


def _add_service(fake: Any, k: Any, server_ip: str) -> None:
    ports = [{"name": "iperf", "protocol": "TCP", "port": 5201, "targetPort": 5201},
             {"name": "iperf-udp", "protocol": "UDP", "port": 5201, "targetPort": 5201}]
    fake.add(k.service("perf", cluster_ip=VIP, ports=ports))
    eps = k.endpointslice("perf-a", service="perf", addresses=[server_ip], port=5201, node=NODE)
    eps["ports"] = [{"name": p["name"], "protocol": p["protocol"], "port": 5201} for p in ports]
    fake.add(eps)


def _wait_policy(vpp: Any, client_ip: str, with_kpol: bool) -> str:
    from vppagent.vpp import acl, kpol

    def programmed() -> bool:
        if with_kpol:
            return bool(kpol.attachments(vpp)) and any(str(m.addr) == client_ip
                                                       for s in kpol.dump_ipsets(vpp) for m in s.members)
        return any(b.output for b in acl.interface_acls(vpp))

    _wait(programmed, 20, "the NetworkPolicy to be programmed")
    return "kpol" if with_kpol else "acl"
