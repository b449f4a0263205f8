"""The Python reference evaluator: the shared vectors, the IR semantics directly, and
agreement with the C core on randomly generated programs."""
from __future__ import annotations

import random
import subprocess
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from testbed.policy_reference import (
    ErrorCode,
    PolicyModelError,
    ReferenceDataplane,
    VectorError,
    VectorSession,
    evaluate,
    evaluate_path,
    format_verdict,
    run_vector_file,
    run_vectors,
    set_contains,
)
from vppagent.policy.ir import (
    AddrPortSet,
    AddrSet,
    DirectionPolicy,
    NetSet,
    Packet,
    PodPolicy,
    PortRange,
    Rule,
    Verdict,
)

from .conftest import VECTORS

V = ip_address


@pytest.mark.parametrize("path", sorted(VECTORS.glob("*.txt")), ids=lambda p: p.name)
def test_reference_passes_the_shared_vectors(path: Path):
    assert run_vector_file(path) == []


def test_reference_reports_a_wrong_expectation():
    text = (VECTORS / "rules.txt").read_text().replace(
        "10.1.0.11 40001 10.1.0.2 8050 -> allow 0 rule", "10.1.0.11 40001 10.1.0.2 8050 -> allow 1 rule")
    failures = run_vectors(text)
    assert len(failures) == 1 and failures[0].got == "allow 0 rule"


def test_reference_rejects_unparsable_lines():
    with pytest.raises(VectorError) as e:
        run_vectors("set a addr\nrule nosuch ingress peers=*\n")
    assert e.value.line == 2


SETS = {
    "pods": AddrSet("pods", frozenset({V("10.0.0.1"), V("fd00::1")})),
    "blk": NetSet("blk", (ip_network("10.0.0.0/8"),), (ip_network("10.9.0.0/16"),)),
    "np": AddrPortSet("np", frozenset({(V("10.0.0.7"), 6, 8080)})),
}


def pkt(src: str, dst: str, proto: int = 6, dport: int = 80) -> Packet:
    return Packet(V(src), V(dst), proto, 40000, dport)


@pytest.mark.parametrize("rule, peer, proto, dport, allowed", [
    (Rule(peers=None, ports=()), "1.2.3.4", 17, 53, True),                     # any peer, any port
    (Rule(peers=(), ports=()), "10.0.0.1", 6, 80, False),                      # () matches nothing
    (Rule(peers=("pods",), ports=(PortRange(6, 80, 80),)), "10.0.0.1", 6, 80, True),
    (Rule(peers=("pods",), ports=(PortRange(6, 80, 80),)), "10.0.0.1", 17, 80, False),
    (Rule(peers=("pods",), ports=(PortRange(0, 80, 80),)), "fd00::1", 17, 80, True),  # proto 0
    (Rule(peers=("blk",), ports=()), "10.9.1.1", 6, 80, False),                # except
    (Rule(peers=("blk",), ports=()), "10.8.1.1", 1, 0, True),                  # ICMP, port 0
    (Rule(peers=(), ports=(), peer_ports=("np",)), "10.0.0.7", 6, 8080, True),
    (Rule(peers=(), ports=(), peer_ports=("np",)), "10.0.0.7", 6, 8081, False),
    (Rule(peers=("pods",), ports=(PortRange(6, 1, 10),), peer_ports=("np",)), "10.0.0.7", 6, 8080,
     True),                                                                    # the "or" branch
])
def test_rule_semantics_from_the_ir(rule, peer, proto, dport, allowed):
    v = evaluate(DirectionPolicy((rule,)), "ingress", Packet(V(peer), V("10.0.0.2"), proto, 1, dport),
                 SETS)
    assert v == (Verdict(True, 0, "rule") if allowed else Verdict(False, -1, "default-deny"))


def test_egress_uses_the_destination_as_peer_and_none_is_not_isolated():
    d = DirectionPolicy((Rule(peers=("pods",), ports=()),))
    assert evaluate(d, "egress", pkt("10.5.5.5", "10.0.0.1"), SETS).allowed
    assert not evaluate(d, "egress", pkt("10.0.0.1", "10.5.5.5"), SETS).allowed
    assert evaluate(None, "egress", pkt("10.0.0.1", "10.5.5.5"), SETS) == Verdict(True, -1,
                                                                                   "not-isolated")


def test_pod_to_pod_needs_source_egress_and_destination_ingress():
    p = PodPolicy(ingress=None, egress=DirectionPolicy((Rule(peers=None, ports=()),)))
    q = PodPolicy(ingress=DirectionPolicy(()), egress=None)
    out, inn = evaluate_path(p, q, pkt("10.0.0.1", "10.0.0.2"), SETS)
    assert out.allowed and not inn.allowed


def test_netset_longest_prefix_wins_and_ties_exclude():
    s = NetSet("n", (ip_network("10.0.0.0/8"), ip_network("10.1.2.0/24"), ip_network("10.3.0.0/16")),
               (ip_network("10.1.0.0/16"), ip_network("10.3.0.0/16")))
    assert set_contains(s, V("10.2.0.1"))
    assert not set_contains(s, V("10.1.0.1"))
    assert set_contains(s, V("10.1.2.3"))
    assert not set_contains(s, V("10.3.0.1"))
    assert not set_contains(s, V("fd00::1"))


def test_model_errors_are_typed_and_change_nothing():
    dp = ReferenceDataplane()
    dp.set_add("a", AddrSet.kind)
    dp.members_add("a", [V("10.0.0.1")])
    with pytest.raises(PolicyModelError) as e:
        dp.members_add("a", [V("10.0.0.2"), V("10.0.0.1")])
    assert e.value.code == ErrorCode.EXISTS
    assert dp.sets["a"].members == frozenset({V("10.0.0.1")})
    with pytest.raises(PolicyModelError) as e:
        dp.policy_set("p", PodPolicy(DirectionPolicy((Rule(peers=("a",), ports=(PortRange(6, 9, 1),)),)),
                                     None))
    assert e.value.code == ErrorCode.INVAL and "p" not in dp.policies


# ---- differential: random programs, expectations from Python, checked by C ----

V4 = ["10.0.0.1", "10.0.0.2", "10.0.0.5", "10.0.1.1", "10.0.1.9", "192.168.0.1"]
V6 = ["fd00::1", "fd00::2", "fd00::1:1"]
ADDRS = V4 + V6
NETS = ["10.0.0.0/24", "10.0.0.0/30", "10.0.0.4/30", "10.0.1.0/24", "10.0.0.0/16", "0.0.0.0/0",
        "10.0.0.1/32", "fd00::/64", "fd00::/127", "fd00::2/128", "::/0", "10.0.0.1/24"]
SET_DEFS = [("sa", "addr"), ("sb", "addr"), ("sn", "net"), ("sp", "addrport")]
PROTOS = ["tcp", "udp", "icmp", "sctp"]


def random_member(r: random.Random, kind: str) -> str:
    if kind == "addr":
        return r.choice(ADDRS)
    if kind == "net":
        return ("!" if r.random() < 0.3 else "") + r.choice(NETS)
    return f"{r.choice(ADDRS)},{r.choice(['tcp', 'udp'])},{r.choice([80, 443, 8080])}"


def random_rule(r: random.Random) -> str:
    peers = r.choice(["*", "-", "sa", "sb", "sn", "sa,sn", "sp", "nosuch"])
    ports = r.choice(["*", "tcp:80", "tcp:80-443", "udp:53", "any:80", "tcp:443,udp:80", "tcp:90-80"])
    pp = r.choice(["", "", " peerports=sp", " peerports=sa"])
    return f"peers={peers} ports={ports}{pp}"


def random_program(seed: int, n: int = 400) -> str:
    """A random vector file; every expectation is the reference's own observation."""
    r = random.Random(seed)
    s = VectorSession()
    lines: list[str] = []
    last: list[str] | None = None

    def do(words: list[str]) -> None:
        try:
            result = s.execute(words)
        except PolicyModelError as e:
            lines.append(f"fail {e.code.value} " + " ".join(words))
            return
        if words[0] == "packet":
            lines.append(" ".join(words) + " -> " + format_verdict(result))
        elif words[0] == "counters":
            lines.append(" ".join(words + [str(x) for x in result]))
        elif words[0] == "contains":
            lines.append(" ".join(words) + (" yes" if result else " no"))
        else:
            lines.append(" ".join(words))

    do(["flows", f"max={r.randint(2, 8)}", f"tcp={r.randint(5, 40)}", f"udp={r.randint(2, 20)}",
        f"other={r.randint(1, 10)}"])
    for name, kind in SET_DEFS:
        do(["set", name, kind])
    now = 0
    for _ in range(n):
        op = r.random()
        if op < 0.18:
            name, kind = r.choice(SET_DEFS)
            do([r.choice(["add", "add", "del"]), name,
                *(random_member(r, kind) for _ in range(r.randint(1, 3)))])
        elif op < 0.25:
            pol = r.choice(["p1", "p2", "p3"])
            do(["policy", pol, f"ingress={r.choice(['isolated', 'open'])}",
                f"egress={r.choice(['isolated', 'open'])}"])
            for d in ("ingress", "egress"):
                if s.drafts[pol].isolated[d]:
                    for _ in range(r.randint(0, 3)):
                        do(["rule", pol, d, *random_rule(r).split()])
            do(["commit", pol])
        elif op < 0.30:
            if r.random() < 0.7:
                do(["attach", r.choice(["i1", "i2", "i3"]), r.choice(["p1", "p2", "p3"])])
            else:
                do(["detach", r.choice(["i1", "i2", "i3"])])
        elif op < 0.32:
            do([r.choice(["delpolicy", "delset"]), r.choice(["p1", "p2", "sa", "sb", "sn"])])
            for name, kind in SET_DEFS:  # keep sets around for later rules
                if name not in s.dp.sets:
                    do(["set", name, kind])
        elif op < 0.36:
            now += r.randint(0, 12)
            do(["time", str(now)])
        elif op < 0.40:
            name, kind = r.choice(SET_DEFS)
            probe = random_member(r, "addrport") if kind == "addrport" else r.choice(ADDRS)
            do(["contains", name, probe])
        elif op < 0.43:
            do(["counters", r.choice(["p1", "p2", "p3"]), r.choice(["ingress", "egress"])])
        else:
            how = r.random()
            if last is None or how < 0.5:
                proto = r.choice(PROTOS)
                fam = V4 if r.random() < 0.75 else V6
                sport, dport = ("0", "0") if proto == "icmp" else (
                    str(r.choice([1000, 1001, 80])), str(r.choice([80, 443, 53, 8080])))
                last = ["packet", r.choice(["i1", "i2", "i3", "i4"]), r.choice(["ingress", "egress"]),
                        proto, r.choice(fam), sport, r.choice(fam), dport]
            elif how < 0.75:
                i, d, proto, src, sport, dst, dport = last[1:]
                last = ["packet", i, "egress" if d == "ingress" else "ingress", proto, dst, dport,
                        src, sport]
            do(list(last))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(12))
def test_c_core_agrees_with_the_reference_on_random_programs(seed: int, core_test_bin: Path,
                                                             tmp_path: Path):
    text = random_program(seed)
    assert run_vectors(text) == []  # the generator and the runner agree with themselves
    kinds = {line.split(" -> ")[1].split()[-1] for line in text.splitlines() if " -> " in line}
    path = tmp_path / f"random{seed}.txt"
    path.write_text(text)
    res = subprocess.run([str(core_test_bin), str(path)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, f"seed {seed}: {kinds}\n{res.stderr[:4000]}"


def test_random_programs_reach_every_verdict_reason():
    seen: set[str] = set()
    for seed in range(12):
        for line in random_program(seed).splitlines():
            if " -> " in line:
                seen.add(line.rsplit(" ", 1)[-1])
    assert seen >= {"rule", "default-deny", "not-isolated", "reply", "table-full"}, seen
