"""VPP clocks per packet per graph node, from ``show runtime`` through the binary API.

Owns clearing the runtime counters before a load run (``clear runtime``),
reading them after, and parsing the CLI text into ``NodeRuntime`` rows (all
worker threads summed per node, clocks weighted by vectors).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any


class RuntimeParseError(ValueError):
    """``show runtime`` text that does not look like VPP's table."""


# The state column is fixed width and cut short ("interrupt wa", an unclosed "not started).
_ROW = re.compile(r"^(?P<name>\S+)\s+(?P<state>\"?[A-Za-z][^\d]*?)\s+(?P<calls>\d+)\s+(?P<vectors>\d+)\s+"
                  r"(?P<suspends>\d+)\s+(?P<clocks>[0-9.]+(?:e[+-]?\d+)?)\s+(?P<vpc>[0-9.]+)\s*$")
_HEADER = re.compile(r"^\s*Name\s+State\s+Calls\s+Vectors\s+Suspends\s+(Packet-)?Clocks\s+Vectors/Call")
_IP_INPUT = ("ip4-input", "ip4-input-no-checksum", "ip6-input")
_TIME = re.compile(r"^Time\s+([0-9.]+),")


@dataclass(frozen=True)
class NodeRuntime:
    name: str
    state: str
    calls: int
    vectors: int
    clocks_per_packet: float   # VPP's Clocks column: clocks per vector element (packet)

    @property
    def total_clocks(self) -> float:
        return self.clocks_per_packet * self.vectors


@dataclass(frozen=True)
class Runtime:
    seconds: float
    nodes: tuple[NodeRuntime, ...]

    def busy(self, min_vectors: int = 1) -> list[NodeRuntime]:
        """Nodes that handled packets, most clocks first (polling input nodes with no packets left out)."""
        return sorted((n for n in self.nodes if n.vectors >= min_vectors), key=lambda n: -n.total_clocks)

    @property
    def ip_packets(self) -> int:
        """Packets VPP's IP layer handled (ip4-input and ip6-input vectors, with their no-checksum
        variants that interfaces trusted to checksum feed; both directions)."""
        return sum(n.vectors for n in self.nodes if n.name in _IP_INPUT)

    def clocks_per_packet(self) -> float | None:
        """All graph nodes' clocks over the IP packets VPP handled: the cost of one forwarded packet."""
        if self.ip_packets <= 0:
            return None
        return sum(n.total_clocks for n in self.nodes if n.vectors) / self.ip_packets

    def summary(self, top: int = 12) -> dict[str, Any]:
        cpp = self.clocks_per_packet()
        return {"seconds": self.seconds, "ip_packets": self.ip_packets,
                "clocks_per_packet": round(cpp, 1) if cpp else None,
                "nodes": [{**asdict(n), "clocks_per_packet": round(n.clocks_per_packet, 1)}
                          for n in self.busy()[:top]]}


def parse(text: str) -> Runtime:
    """Rows of every thread in ``show runtime`` text, merged per node name."""
    seconds = 0.0
    merged: dict[str, list[Any]] = {}
    saw_header = False
    for line in text.splitlines():
        m = _TIME.match(line)
        if m:
            seconds = max(seconds, float(m.group(1)))
            continue
        if _HEADER.match(line):
            saw_header = True
            continue
        m = _ROW.match(line)
        if not m or not saw_header:
            continue
        vectors, clocks = int(m["vectors"]), float(m["clocks"])
        row = merged.setdefault(m["name"], [m["state"].strip('" '), 0, 0, 0.0])
        row[1] += int(m["calls"])
        row[2] += vectors
        row[3] += clocks * vectors
    if not saw_header:
        raise RuntimeParseError(f"no runtime table header in: {text[:200]!r}")
    nodes = tuple(NodeRuntime(name, st, calls, vec, (total / vec) if vec else 0.0)
                  for name, (st, calls, vec, total) in merged.items())
    return Runtime(seconds, nodes)


def clear(vpp: Any) -> None:
    vpp.call("cli_inband", cmd="clear runtime")


def read(vpp: Any) -> Runtime:
    return parse(vpp.call("cli_inband", cmd="show runtime").reply)


def version(vpp: Any) -> str:
    r = vpp.call("show_version")
    return f"{r.version} (built {r.build_date})"
