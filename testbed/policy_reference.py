"""Reference evaluator for the policy IR, and runner of the shared test vectors.

Owns: the obviously-correct (linear, unoptimised) reading of the IR's
semantics — set membership, rule matching, per-direction verdicts — and a
model of the C data plane's state (sets by name, policies, attachments, the
per-interface flow table with reply lookup, per-protocol idle timeouts, its
bounded size, per-rule and default-deny counters). The vector files in
``vpp_plugins/kpol/vectors/*.txt`` are run by this module and by the C core's
test program; both must produce the same verdicts, counters and errors.

Must not touch: Kubernetes objects (the compiler), VPP (the vpp layer). This
module is for tests and for the emulator; the agent never evaluates packets.
"""
from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from vppagent.policy.ir import (
    AddrPortSet,
    AddrSet,
    Direction,
    DirectionPolicy,
    IpAddress,
    IpNetwork,
    IpSet,
    NetSet,
    Packet,
    PodPolicy,
    PortRange,
    Reason,
    Rule,
    SetKind,
    Verdict,
)

# Not an IR reason: the C data plane drops a packet that policy allows when
# its flow table is full and nothing in it has expired.
REASON_TABLE_FULL = Reason.TABLE_FULL

PROTO_NAMES = {"any": 0, "icmp": 1, "tcp": 6, "udp": 17, "icmp6": 58, "sctp": 132}


# ---- pure evaluation --------------------------------------------------------

def canonical(addr: IpAddress) -> IpAddress:
    """IPv4-mapped IPv6 addresses are IPv4, as in the C core."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def net_contains(s: NetSet, addr: IpAddress) -> bool:
    """Longest-prefix match by linear scan; a prefix both included and excluded is excluded."""
    addr = canonical(addr)
    best_len, best_include = -1, False
    for nets, include in ((s.include, True), (s.exclude, False)):
        for net in nets:
            if net.version == addr.version and addr in net:
                if net.prefixlen > best_len or (net.prefixlen == best_len and not include):
                    best_len, best_include = net.prefixlen, include
    return best_include


def set_contains(s: IpSet, addr: IpAddress, proto: int = 0, port: int = 0) -> bool:
    addr = canonical(addr)
    if isinstance(s, AddrSet):
        return addr in s.members
    if isinstance(s, NetSet):
        return net_contains(s, addr)
    return (addr, proto, port) in s.members


def range_matches(r: PortRange, proto: int, port: int) -> bool:
    return (r.proto == 0 or r.proto == proto) and r.lo <= port <= r.hi


def rule_matches(rule: Rule, sets: Mapping[str, IpSet], peer: IpAddress, proto: int,
                 port: int) -> bool:
    peer_ok = rule.peers is None or any(set_contains(sets[n], peer) for n in rule.peers)
    ports_ok = not rule.ports or any(range_matches(r, proto, port) for r in rule.ports)
    if peer_ok and ports_ok:
        return True
    return any(set_contains(sets[n], peer, proto, port) for n in rule.peer_ports)


def evaluate(policy: DirectionPolicy | None, direction: str, packet: Packet,
             sets: Mapping[str, IpSet]) -> Verdict:
    """The stateless verdict of one direction of a pod's policy."""
    if policy is None:
        return Verdict(True, -1, Reason.NOT_ISOLATED.value)
    peer = packet.src if direction == Direction.INGRESS else packet.dst
    for i, rule in enumerate(policy.rules):
        if rule_matches(rule, sets, peer, packet.proto, packet.dport):
            return Verdict(True, i, Reason.RULE.value)
    return Verdict(False, -1, Reason.DEFAULT_DENY.value)


def direction_policy(policy: PodPolicy, direction: str) -> DirectionPolicy | None:
    return policy.ingress if direction == Direction.INGRESS else policy.egress


def evaluate_path(src_policy: PodPolicy | None, dst_policy: PodPolicy | None, packet: Packet,
                  sets: Mapping[str, IpSet]) -> tuple[Verdict, Verdict]:
    """A packet from pod P to pod Q on one node: P's egress, then Q's ingress."""
    out = evaluate(src_policy.egress if src_policy else None, Direction.EGRESS, packet, sets)
    inn = evaluate(dst_policy.ingress if dst_policy else None, Direction.INGRESS, packet, sets)
    return out, inn


# ---- the data-plane model ---------------------------------------------------

class ErrorCode(StrEnum):
    """The C core's error codes (kpol_core.h), by the names the vectors use."""

    INVAL = "inval"
    NOENT = "noent"
    EXISTS = "exists"
    BUSY = "busy"
    KIND = "kind"


class PolicyModelError(Exception):
    def __init__(self, code: ErrorCode, what: str) -> None:
        super().__init__(f"{code.value}: {what}")
        self.code = code
        self.what = what


@dataclass(frozen=True)
class Timeouts:
    tcp: int = 300
    udp: int = 60
    other: int = 30

    def of(self, proto: int) -> int:
        return self.tcp if proto == 6 else self.udp if proto == 17 else self.other


FlowKey = tuple[str, str, IpAddress, IpAddress, int, int, int]  # iface, dir, src, dst, proto, sport, dport


@dataclass
class _Flow:
    key: FlowKey
    expires: int
    gen: int
    rule: int
    reason: str


def _flow_key(iface: str, direction: str, p: Packet, reverse: bool = False) -> FlowKey:
    if reverse:
        other = Direction.EGRESS if direction == Direction.INGRESS else Direction.INGRESS
        return (iface, str(other), canonical(p.dst), canonical(p.src), p.proto, p.dport, p.sport)
    return (iface, str(direction), canonical(p.src), canonical(p.dst), p.proto, p.sport, p.dport)


def _reverse_key(k: FlowKey) -> FlowKey:
    iface, d, src, dst, proto, sport, dport = k
    other = Direction.EGRESS.value if d == Direction.INGRESS else Direction.INGRESS.value
    return (iface, other, dst, src, proto, dport, sport)


@dataclass
class ReferenceDataplane:
    """What one worker of the C core does, stated plainly (dicts, linear scans)."""

    max_flows: int = 1024
    timeouts: Timeouts = field(default_factory=Timeouts)
    sets: dict[str, IpSet] = field(default_factory=dict)
    policies: dict[str, PodPolicy] = field(default_factory=dict)
    attached: dict[str, str] = field(default_factory=dict)  # iface -> policy name
    # (policy, direction) -> [default-deny drops, hits of rule 0, rule 1, ...]
    counters: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    gen: int = 0
    _flows: dict[FlowKey, _Flow] = field(default_factory=dict)

    # sets
    def set_add(self, name: str, kind: SetKind) -> None:
        if name in self.sets:
            raise PolicyModelError(ErrorCode.EXISTS, f"set {name}")
        self.sets[name] = (AddrSet(name, frozenset()) if kind == SetKind.ADDR else
                           NetSet(name, (), ()) if kind == SetKind.NET else
                           AddrPortSet(name, frozenset()))

    def set_del(self, name: str) -> None:
        self.get_set(name)
        users = [p for p, pol in self.policies.items() if name in _referenced_sets(pol)]
        if users:
            raise PolicyModelError(ErrorCode.BUSY, f"set {name} is used by policy {users[0]}")
        del self.sets[name]
        self.gen += 1

    def get_set(self, name: str) -> IpSet:
        try:
            return self.sets[name]
        except KeyError:
            raise PolicyModelError(ErrorCode.NOENT, f"set {name}") from None

    def member_add(self, name: str, member: object) -> None:
        s = self.get_set(name)
        if isinstance(s, NetSet):
            net, exclude = _net_member(member)
            field_name = "exclude" if exclude else "include"
            if net in getattr(s, field_name):
                raise PolicyModelError(ErrorCode.EXISTS, f"{name}: {net}")
            self.sets[name] = dataclasses.replace(s, **{field_name: getattr(s, field_name) + (net,)})
            return
        key = _hash_member(s, member)
        if key in s.members:
            raise PolicyModelError(ErrorCode.EXISTS, f"{name}: {member}")
        self.sets[name] = dataclasses.replace(s, members=s.members | {key})

    def member_del(self, name: str, member: object) -> None:
        s = self.get_set(name)
        if isinstance(s, NetSet):
            net, exclude = _net_member(member)
            field_name = "exclude" if exclude else "include"
            nets = getattr(s, field_name)
            if net not in nets:
                raise PolicyModelError(ErrorCode.NOENT, f"{name}: {net}")
            self.sets[name] = dataclasses.replace(
                s, **{field_name: tuple(n for n in nets if n != net)})
        else:
            key = _hash_member(s, member)
            if key not in s.members:
                raise PolicyModelError(ErrorCode.NOENT, f"{name}: {member}")
            self.sets[name] = dataclasses.replace(s, members=s.members - {key})
        self.gen += 1

    def members_add(self, name: str, members: Iterable[object]) -> None:
        """All or nothing, like the C batch."""
        before = self.sets.get(name)
        try:
            for m in members:
                self.member_add(name, m)
        except PolicyModelError:
            if before is not None:
                self.sets[name] = before
            raise

    def members_del(self, name: str, members: Iterable[object]) -> None:
        before, gen = self.sets.get(name), self.gen
        try:
            for m in members:
                self.member_del(name, m)
        except PolicyModelError:
            if before is not None:
                self.sets[name] = before
            self.gen = gen
            raise

    # policies and attachments
    def policy_set(self, name: str, policy: PodPolicy) -> None:
        for d in (policy.ingress, policy.egress):
            for rule in d.rules if d else ():
                self._check_rule(rule)
        self.policies[name] = policy
        for direction in Direction:
            dp = direction_policy(policy, direction)
            if dp is None:
                self.counters.pop((name, direction.value), None)
            else:
                self.counters[(name, direction.value)] = [0] * (1 + len(dp.rules))
        self.gen += 1

    def _check_rule(self, rule: Rule) -> None:
        for n in rule.peers or ():
            if self.get_set(n).kind == SetKind.ADDR_PORT:
                raise PolicyModelError(ErrorCode.KIND, f"peer set {n} is an address+port set")
        for n in rule.peer_ports:
            if self.get_set(n).kind != SetKind.ADDR_PORT:
                raise PolicyModelError(ErrorCode.KIND, f"peer_ports set {n} is not address+port")
        for r in rule.ports:
            if r.lo > r.hi:
                raise PolicyModelError(ErrorCode.INVAL, f"port range {r.lo}-{r.hi}")

    def policy_del(self, name: str) -> None:
        if name not in self.policies:
            raise PolicyModelError(ErrorCode.NOENT, f"policy {name}")
        if name in self.attached.values():
            raise PolicyModelError(ErrorCode.BUSY, f"policy {name} is attached")
        del self.policies[name]
        for direction in Direction:
            self.counters.pop((name, direction.value), None)
        self.gen += 1

    def attach(self, iface: str, policy: str) -> None:
        if policy not in self.policies:
            raise PolicyModelError(ErrorCode.NOENT, f"policy {policy}")
        if self.attached.get(iface) != policy:
            self.attached[iface] = policy
            self.gen += 1

    def detach(self, iface: str) -> None:
        if iface not in self.attached:
            raise PolicyModelError(ErrorCode.NOENT, f"interface {iface} has no policy")
        del self.attached[iface]
        self.gen += 1

    # the data path
    def flush_flows(self) -> None:
        self._flows.clear()

    def live_flows(self, now: int) -> int:
        return sum(1 for f in self._flows.values() if now < f.expires)

    def process(self, iface: str, direction: str, p: Packet, now: int) -> Verdict:
        """The verdict for packet p seen on iface in direction, at time now."""
        pol_name = self.attached.get(iface)
        pol = self.policies.get(pol_name) if pol_name else None
        if pol is None or (pol.ingress is None and pol.egress is None):
            return Verdict(True, -1, Reason.NOT_ISOLATED.value)
        dp = direction_policy(pol, direction)
        ctr = self.counters.get((pol_name, str(direction)))
        fkey = _flow_key(iface, direction, p)
        flow, is_reply = self._flows.get(fkey), False
        if flow is None:
            flow = self._flows.get(_reverse_key(fkey))
            is_reply = flow is not None
        if flow is not None and now >= flow.expires:
            del self._flows[flow.key]
            flow = None
        if flow is not None:
            flow.expires = now + self.timeouts.of(p.proto)
            if is_reply:
                return Verdict(True, -1, Reason.REPLY.value)
            if flow.gen == self.gen:
                if ctr is not None:
                    ctr[flow.rule + 1] += 1
                return Verdict(True, flow.rule, flow.reason)
            v = evaluate(dp, direction, p, self.sets)
            if ctr is not None:
                ctr[v.rule_index + 1] += 1
            if not v.allowed:
                del self._flows[flow.key]
            else:
                flow.gen, flow.rule, flow.reason = self.gen, v.rule_index, v.reason
            return v
        v = evaluate(dp, direction, p, self.sets)
        if not v.allowed:
            if ctr is not None:
                ctr[0] += 1
            return v
        # expired flows are gone as far as any packet can tell
        self._flows = {k: f for k, f in self._flows.items() if now < f.expires}
        if len(self._flows) >= self.max_flows:
            return Verdict(False, -1, REASON_TABLE_FULL)
        self._flows[fkey] = _Flow(fkey, now + self.timeouts.of(p.proto), self.gen,
                                  v.rule_index, v.reason)
        if ctr is not None:
            ctr[v.rule_index + 1] += 1
        return v


def _referenced_sets(policy: PodPolicy) -> set[str]:
    names: set[str] = set()
    for d in (policy.ingress, policy.egress):
        for rule in d.rules if d else ():
            names.update(rule.peers or ())
            names.update(rule.peer_ports)
    return names


def _net_member(member: object) -> tuple[IpNetwork, bool]:
    net, exclude = member  # type: ignore[misc]
    return net, bool(exclude)


def _hash_member(s: IpSet, member: object) -> object:
    if isinstance(s, AddrSet):
        if not isinstance(member, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            raise PolicyModelError(ErrorCode.INVAL, f"{s.name}: {member!r} is not an address")
        return canonical(member)
    if not (isinstance(member, tuple) and len(member) == 3):
        raise PolicyModelError(ErrorCode.INVAL, f"{s.name}: {member!r} is not (addr, proto, port)")
    addr, proto, port = member
    return (canonical(addr), proto, port)


# ---- the shared vector format -----------------------------------------------
# One command per line, '#' starts a comment. Names of sets, policies and
# interfaces are free words. See vpp_plugins/kpol/vectors/README for the grammar.

class VectorError(ValueError):
    """A vector file that does not parse; carries the line number."""

    def __init__(self, path: str, line: int, msg: str) -> None:
        super().__init__(f"{path}:{line}: {msg}")
        self.line = line


@dataclass(frozen=True)
class Failure:
    line: int
    text: str
    expected: str
    got: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.text!r}: expected {self.expected}, got {self.got}"


def parse_proto(s: str) -> int:
    if s in PROTO_NAMES:
        return PROTO_NAMES[s]
    n = int(s)
    if not 0 <= n <= 255:
        raise ValueError(f"protocol {s}")
    return n


def _parse_port(s: str) -> int:
    n = int(s)
    if not 0 <= n <= 65535:
        raise ValueError(f"port {s}")
    return n


def parse_member(kind: SetKind, tok: str) -> object:
    """A member in the vector syntax; a malformed one is the core's "inval"."""
    try:
        return _parse_member(kind, tok)
    except ValueError as e:
        raise PolicyModelError(ErrorCode.INVAL, f"member {tok!r}: {e}") from None


def _parse_member(kind: SetKind, tok: str) -> object:
    if kind == SetKind.ADDR:
        return canonical(ipaddress.ip_address(tok))
    if kind == SetKind.ADDR_PORT:
        addr, proto, port = tok.split(",")
        return (canonical(ipaddress.ip_address(addr)), parse_proto(proto), _parse_port(port))
    exclude = tok.startswith("!")
    iface = ipaddress.ip_interface(tok.lstrip("!"))
    if iface.ip != iface.network.network_address:
        raise PolicyModelError(ErrorCode.INVAL, f"{tok} has host bits set")
    return (iface.network, exclude)


def parse_ports(tok: str) -> tuple[PortRange, ...]:
    if tok == "*":
        return ()
    out = []
    for part in tok.split(","):
        proto, _, rng = part.partition(":")
        lo, _, hi = (rng or "0-65535").partition("-")
        out.append(PortRange(parse_proto(proto), _parse_port(lo), _parse_port(hi or lo)))
    return tuple(out)


def parse_rule(words: list[str]) -> Rule:
    opts = dict(w.split("=", 1) for w in words)
    unknown = set(opts) - {"peers", "ports", "peerports"}
    if unknown:
        raise ValueError(f"unknown rule options {sorted(unknown)}")
    peers_tok = opts.get("peers", "*")
    peers = None if peers_tok == "*" else () if peers_tok == "-" else tuple(peers_tok.split(","))
    pp = tuple(opts["peerports"].split(",")) if opts.get("peerports") else ()
    return Rule(peers=peers, ports=parse_ports(opts.get("ports", "*")), peer_ports=pp)


@dataclass
class _Draft:
    isolated: dict[str, bool]
    rules: dict[str, list[Rule]]

    def build(self) -> PodPolicy:
        def d(direction: str) -> DirectionPolicy | None:
            return DirectionPolicy(tuple(self.rules[direction])) if self.isolated[direction] else None
        return PodPolicy(ingress=d("ingress"), egress=d("egress"))


def format_verdict(v: Verdict) -> str:
    """A verdict as the vector files write it: ``allow|deny RULE REASON``."""
    return f"{'allow' if v.allowed else 'deny'} {v.rule_index} {v.reason}"


class VectorSession:
    """One vector file's state: executes commands and returns what they observe.

    ``execute`` raises PolicyModelError for a command the data plane rejects
    and ValueError/KeyError/IndexError for one that does not parse. It
    returns the observation of ``packet`` (a Verdict), ``counters`` (a list)
    and ``contains`` (a bool), without their expectations; None otherwise.
    Test generators use it to write vectors whose expectations come from here.
    """

    def __init__(self) -> None:
        self.dp = ReferenceDataplane()
        self.drafts: dict[str, _Draft] = {}
        self.now = 0

    def execute(self, w: list[str]) -> Verdict | list[int] | bool | None:
        dp, cmd, args = self.dp, w[0], w[1:]
        if cmd == "flows":
            opts = dict(a.split("=", 1) for a in args)
            dp.max_flows = int(opts.get("max", dp.max_flows))
            dp.timeouts = Timeouts(int(opts.get("tcp", dp.timeouts.tcp)),
                                   int(opts.get("udp", dp.timeouts.udp)),
                                   int(opts.get("other", dp.timeouts.other)))
            dp.flush_flows()
        elif cmd == "time":
            self.now = int(args[0])
        elif cmd == "set":
            dp.set_add(args[0], {"addr": SetKind.ADDR, "net": SetKind.NET,
                                 "addrport": SetKind.ADDR_PORT}[args[1]])
        elif cmd == "delset":
            dp.set_del(args[0])
        elif cmd in ("add", "del"):
            kind = dp.get_set(args[0]).kind
            members = [parse_member(kind, t) for t in args[1:]]
            (dp.members_add if cmd == "add" else dp.members_del)(args[0], members)
        elif cmd == "contains":
            s = dp.get_set(args[0])
            if s.kind == SetKind.ADDR_PORT:
                addr, proto, port = parse_member(SetKind.ADDR_PORT, args[1])  # type: ignore[misc]
                return set_contains(s, addr, proto, port)
            return set_contains(s, ipaddress.ip_address(args[1]))
        elif cmd == "policy":
            opts = dict(a.split("=", 1) for a in args[1:])
            if set(opts) - {"ingress", "egress"}:
                raise ValueError(f"unknown policy options {sorted(opts)}")
            self.drafts[args[0]] = _Draft(
                isolated={d: opts.get(d, "open") == "isolated" for d in ("ingress", "egress")},
                rules={"ingress": [], "egress": []})
        elif cmd == "rule":
            draft = self.drafts[args[0]]
            direction = Direction(args[1]).value
            if not draft.isolated[direction]:
                raise ValueError(f"policy {args[0]} is not isolated for {direction}")
            draft.rules[direction].append(parse_rule(args[2:]))
        elif cmd == "commit":
            dp.policy_set(args[0], self.drafts[args[0]].build())
        elif cmd == "delpolicy":
            dp.policy_del(args[0])
        elif cmd == "attach":
            dp.attach(args[0], args[1])
        elif cmd == "detach":
            dp.detach(args[0])
        elif cmd == "packet":
            # packet IF DIR PROTO SRC SPORT DST DPORT
            a = args
            if len(a) != 7:
                raise ValueError("packet IF DIR PROTO SRC SPORT DST DPORT")
            p = Packet(src=canonical(ipaddress.ip_address(a[3])),
                       dst=canonical(ipaddress.ip_address(a[5])),
                       proto=parse_proto(a[2]), sport=_parse_port(a[4]), dport=_parse_port(a[6]))
            return dp.process(a[0], Direction(a[1]).value, p, self.now)
        elif cmd == "counters":
            return list(dp.counters.get((args[0], Direction(args[1]).value)) or [])
        else:
            raise ValueError(f"unknown command {cmd}")
        return None


def _split_expectation(words: list[str]) -> tuple[list[str], str | None]:
    """Separates a command from what the line expects it to observe."""
    cmd = words[0]
    if cmd == "packet":
        if len(words) != 12 or words[8] != "->":
            raise ValueError("packet IF DIR PROTO SRC SPORT DST DPORT -> allow|deny RULE REASON")
        return words[:8], " ".join(words[9:])
    if cmd == "counters":
        return words[:3], " ".join(words[3:])
    if cmd == "contains":
        if len(words) != 4 or words[3] not in ("yes", "no"):
            raise ValueError("contains SET MEMBER yes|no")
        return words[:3], words[3]
    return words, None


def _observed(result: object) -> str:
    if isinstance(result, Verdict):
        return format_verdict(result)
    if isinstance(result, bool):
        return "yes" if result else "no"
    if isinstance(result, list):
        return " ".join(map(str, result))
    return ""


def run_vectors(text: str, path: str = "<vectors>") -> list[Failure]:
    """Runs one vector file against a fresh ReferenceDataplane; returns the mismatches."""
    session = VectorSession()
    failures: list[Failure] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        expect_error = None
        if words[0] == "fail":
            if len(words) < 3:
                raise VectorError(path, lineno, "fail needs an error code and a command")
            expect_error, words = words[1], words[2:]
        got_error, result = None, None
        try:
            command, expectation = _split_expectation(words)
            result = session.execute(command)
        except PolicyModelError as e:
            got_error = e.code.value
        except (ValueError, KeyError, IndexError) as e:
            raise VectorError(path, lineno, f"{line!r}: {e}") from e
        if expect_error is not None or got_error is not None:
            if got_error != expect_error:
                failures.append(Failure(lineno, line, f"error {expect_error or 'none'}",
                                        f"error {got_error or 'none'}"))
            continue
        if expectation is not None and _observed(result) != expectation:
            failures.append(Failure(lineno, line, expectation, _observed(result)))
    return failures


def run_vector_file(path: str | Path) -> list[Failure]:
    p = Path(path)
    return run_vectors(p.read_text(), str(p))


__all__ = [
    "ErrorCode", "Failure", "PolicyModelError", "REASON_TABLE_FULL", "ReferenceDataplane",
    "Timeouts", "VectorError", "VectorSession", "evaluate", "evaluate_path", "format_verdict",
    "net_contains", "rule_matches", "run_vector_file", "run_vectors", "set_contains",
]
