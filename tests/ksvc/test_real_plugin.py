"""The ksvc plugin inside a real VPP: where its nodes sit on the feature arcs, its startup
options, and its IPv6 path and session bound on packet-generator traffic (no namespaces).

Needs VPPAGENT_VPP_BIN and root, and the plugin (VPPAGENT_KSVC_PLUGIN_DIR or a cmake
build, see conftest).
"""
from __future__ import annotations

import ipaddress
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from vppagent.vpp import interfaces, ksvc
from vppagent.vpp.client import VppClient
from vppagent.vpp.ksvc import PROTO_TCP, KsvcService

from .conftest import real_target

pytestmark = [pytest.mark.real_vpp]

MAX_SESSIONS = 4


@pytest.fixture(scope="module")
def vpp(ksvc_plugin_dirs: tuple[Path, ...], tmp_path_factory: pytest.TempPathFactory):
    with ExitStack() as stack:
        yield real_target(stack, tmp_path_factory.mktemp("ksvc-pg"), ksvc_plugin_dirs,
                          extra_conf=f"ksvc {{ max-sessions-per-thread {MAX_SESSIONS} tcp-timeout 600 }}\n").vpp


def cli(vpp: VppClient, cmd: str) -> str:
    return vpp.call("cli_inband", cmd=cmd).reply


def _arc(features: str, arc: str) -> list[str]:
    """The feature nodes listed under ``arc:`` in "show interface features"."""
    lines = features.splitlines()
    start = lines.index(f"{arc}:") + 1
    out = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        out.append(line.strip())
    return out


def test_nodes_run_before_cnat_and_policy_on_the_way_in_and_after_policy_on_the_way_out(vpp: VppClient):
    if "kpol_plugin.so" not in cli(vpp, "show plugins"):
        pytest.skip("the kpol plugin is not next to ksvc_plugin.so (VPPAGENT_KSVC_PLUGIN_DIR)")
    loop = interfaces.create_loopback(vpp)
    try:
        name = interfaces.get(vpp, loop).name
        ksvc.enable(vpp, loop, True)
        # No service yet: the nodes stay off (they would cost every packet for nothing).
        assert "ksvc" not in cli(vpp, f"show interface features {name}")
        assert ksvc.interface_dump(vpp) == [loop]
        svc = ksvc.KsvcService(ipaddress.ip_address("10.96.9.9"), ksvc.PROTO_TCP, 80,
                               ((ipaddress.ip_address("10.244.9.9"), 8080),), 10)
        ksvc.service_update(vpp, svc)
        for node, arc in (("cnat-lookup-ip4", "ip4-unicast"), ("cnat-input-ip4", "ip4-unicast"),
                          ("kpol-ip4-in", "ip4-unicast"), ("kpol-ip4-out", "ip4-output"),
                          ("cnat-lookup-ip6", "ip6-unicast"), ("cnat-input-ip6", "ip6-unicast"),
                          ("kpol-ip6-in", "ip6-unicast"), ("kpol-ip6-out", "ip6-output")):
            cli(vpp, f"set interface feature {name} {node} arc {arc}")
        feats = cli(vpp, f"show interface features {name}")
        for fam in ("4", "6"):
            unicast, output = _arc(feats, f"ip{fam}-unicast"), _arc(feats, f"ip{fam}-output")
            assert unicast[0] == f"ksvc-ip{fam}", feats
            assert {f"cnat-input-ip{fam}", f"kpol-ip{fam}-in"} <= set(unicast), feats
            assert output.index(f"ksvc-ip{fam}-out") > output.index(f"kpol-ip{fam}-out"), feats
        # The last service goes: the nodes go; the interface stays enabled for the next one.
        ksvc.service_del(vpp, svc.vip, svc.proto, svc.port)
        assert "ksvc" not in cli(vpp, f"show interface features {name}")
        assert ksvc.interface_dump(vpp) == [loop]
        ksvc.service_update(vpp, svc)
        assert "ksvc-ip4" in cli(vpp, f"show interface features {name}")
        ksvc.enable(vpp, loop, False)
        assert "ksvc" not in cli(vpp, f"show interface features {name}")
        ksvc.service_del(vpp, svc.vip, svc.proto, svc.port)
    finally:
        interfaces.delete_loopback(vpp, loop)


def test_ipv6_flows_are_translated_until_the_session_table_is_full(vpp: VppClient):
    """Ten IPv6 TCP flows (source ports 1000-1009) from pg0 to a VIP: the first four get a
    session and are DNATed (traced), the rest are dropped and counted as table-full."""
    cli(vpp, "create packet-generator interface pg0")
    cli(vpp, "set interface ip address pg0 2001:db8::1/64")
    cli(vpp, "set interface state pg0 up")
    (pg0,) = [i.sw_if_index for i in interfaces.dump(vpp) if i.name == "pg0"]
    ksvc.enable(vpp, pg0, True)
    vip = ipaddress.ip_address("2001:db8:96::10")
    ksvc.service_update(vpp, KsvcService(vip, PROTO_TCP, 80, ((ipaddress.ip_address("2001:db8::2"), 8080),), 30))
    cli(vpp, "trace add pg-input 20")
    try:
        cli(vpp, "packet-generator new { name ks6 limit 10 size 80-80 node ip6-input source pg0 "
                 "data { TCP: 2001:db8::5 -> 2001:db8:96::10 TCP: 1000-1009 -> 80 incrementing 20 } }")
        cli(vpp, "packet-generator enable-stream ks6")
        deadline = time.monotonic() + 10
        st = ksvc.stats(vpp)
        while st.sessions_created + st.table_full < 10 and time.monotonic() < deadline:
            time.sleep(0.1)
            st = ksvc.stats(vpp)
        assert (st.sessions, st.sessions_created, st.table_full) == (MAX_SESSIONS, MAX_SESSIONS, 10 - MAX_SESSIONS)
        assert st.affinity_entries == 1 and st.affinity_hits == MAX_SESSIONS - 1
        trace = cli(vpp, "show trace")
        assert trace.count("dnat [2001:db8::2]:8080") == MAX_SESSIONS, trace
        assert trace.count("drop-table-full") == 10 - MAX_SESSIONS, trace
        shown = cli(vpp, "show ksvc")
        assert "2001:db8:96::10 proto 6 port 80 timeout 30s: 2001:db8::2:8080" in shown, shown
        assert f"{MAX_SESSIONS} sessions" in shown, shown
    finally:
        cli(vpp, "packet-generator delete ks6")
        cli(vpp, "clear trace")
        ksvc.service_del(vpp, vip, PROTO_TCP, 80)


@pytest.mark.parametrize("conf,why", [
    ("max-sessions-per-thread 0", "max-sessions-per-thread 0 not in"),
    ("udp-timeout 0", "session timeout of 0 s"),
    ("max-flows 5", "unknown ksvc input"),
])
def test_a_bad_startup_option_stops_vpp_with_the_reason(ksvc_plugin_dirs, tmp_path_factory, conf, why):
    from startup.vpp_process import VppStartError

    with pytest.raises(VppStartError) as e, ExitStack() as stack:
        real_target(stack, tmp_path_factory.mktemp("ksvc-conf"), ksvc_plugin_dirs, extra_conf=f"ksvc {{ {conf} }}\n")
    assert why in str(e.value)
