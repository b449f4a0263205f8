"""``show runtime`` parsing, on text a real VPP 26.06 printed (data/) and on a live private VPP."""
from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from perf.runner.measure.runtime import RuntimeParseError, parse

DATA = Path(__file__).parent / "data" / "show_runtime_af_packet_tcp.txt"


def test_parses_every_row_of_a_real_vpp_table() -> None:
    text = DATA.read_text()
    rt = parse(text)
    rows = [line for line in text.splitlines()[3:] if line.strip()]
    assert len(rt.nodes) == len(rows) == 33
    assert rt.seconds == 1.4
    by = {n.name: n for n in rt.nodes}
    # fixed-width state column cut short, and an unclosed quote
    assert by["af-packet-input"].state == "interrupt wa"
    assert by["startup-config-process"].state == "not started"
    assert (by["af-packet-input"].calls, by["af-packet-input"].vectors) == (4005, 155200)
    assert by["af-packet-input"].clocks_per_packet == 1460.0
    assert by["ip4-rewrite"].clocks_per_packet == pytest.approx(62.9)
    assert by["fib-walk"].state == "any wait" and by["fib-walk"].vectors == 0
    assert rt.ip_packets == 155189 + 11  # ip4-input + ip6-input
    total = sum(n.clocks_per_packet * n.vectors for n in rt.nodes)
    assert rt.clocks_per_packet() == pytest.approx(total / rt.ip_packets)
    busy = rt.busy()
    assert busy[0].name == "host-vpaf80d96128ad8-tx"  # the af_packet TX syscalls dominate
    assert all(n.vectors > 0 for n in busy)
    summary = rt.summary(top=3)
    assert [n["name"] for n in summary["nodes"]] == [n.name for n in busy[:3]]


def test_threads_merge_per_node_weighted_by_vectors() -> None:
    lines = DATA.read_text().splitlines()
    header, table = lines[:3], lines[3:]
    worker = [line.replace("155189", "44811") if line.startswith("ip4-lookup") else line for line in table]
    text = "\n".join(["Thread 0 vpp_main (lcore 0)"] + header + table
                     + ["Thread 1 vpp_wk_0 (lcore 1)"] + header + worker)
    rt = parse(text)
    lookup = next(n for n in rt.nodes if n.name == "ip4-lookup")
    assert lookup.vectors == 155189 + 44811
    assert lookup.calls == 2 * 3676
    assert lookup.clocks_per_packet == pytest.approx(65.1)


def test_text_without_a_table_is_refused() -> None:
    with pytest.raises(RuntimeParseError, match="no runtime table header"):
        parse("unknown input `show runtme'")


@pytest.mark.real_vpp
def test_clear_and_read_on_a_live_vpp() -> None:
    from perf.runner.measure import runtime
    from testbed import targets

    with ExitStack() as stack:
        # private: the test adds a packet-generator interface that it does not remove
        vpp = targets.private_vpp(stack, client={}).vpp
        assert vpp is not None
        for cmd in ("create loopback interface", "set interface state loop0 up",
                    "set interface ip address loop0 10.9.0.1/24", "create packet-generator interface pg0",
                    "set interface state pg0 up", "set interface ip address pg0 10.8.0.1/24",
                    "packet-generator new { name s0 limit 100 size 64-64 node ip4-input interface pg0 "
                    "data { UDP: 10.8.0.2 -> 10.9.0.5 UDP: 1234 -> 5678 incrementing 8 } }"):
            vpp.call("cli_inband", cmd=cmd)
        vpp.call("cli_inband", cmd="ping 10.9.0.1 repeat 2 interval 0.01")
        runtime.clear(vpp)
        assert parse(vpp.call("cli_inband", cmd="show runtime").reply).ip_packets == 0
        vpp.call("cli_inband", cmd="packet-generator enable-stream s0")
        deadline = time.monotonic() + 10
        while runtime.read(vpp).ip_packets < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        rt = runtime.read(vpp)
        by = {n.name: n for n in rt.nodes}
        assert rt.ip_packets == 100
        assert by["ip4-input"].vectors == by["ip4-lookup"].vectors == 100
        assert by["ip4-lookup"].clocks_per_packet > 0
        assert rt.clocks_per_packet() >= by["ip4-lookup"].clocks_per_packet
        assert runtime.version(vpp).startswith("26.06")
