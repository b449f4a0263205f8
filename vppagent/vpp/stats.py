"""VPP's stats segment: interface counters and error counters, read from shared memory.

Owns the connection to VPP's stats socket (vpp_papi's VPPStats maps the
segment VPP hands over) and its translation into plain dataclasses. Reading
stats never goes through the API socket, so it costs VPP nothing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from vpp_papi.vpp_stats import VPPStats

from .errors import VppConnectError, VppError

DEFAULT_STATS_SOCKET = "/run/vpp/stats.sock"


@dataclass(frozen=True)
class InterfaceCounters:
    sw_if_index: int
    name: str
    rx_packets: int
    rx_bytes: int
    tx_packets: int
    tx_bytes: int
    drops: int


class StatsReader:
    def __init__(self, socket_path: str = DEFAULT_STATS_SOCKET, timeout: float = 2.0):
        self.socket_path = socket_path
        self._stats = VPPStats(socketname=socket_path, timeout=timeout)

    def connect(self) -> "StatsReader":
        if not os.path.exists(self.socket_path):
            raise VppConnectError(f"VPP stats socket {self.socket_path} does not exist")
        try:
            self._stats.connect()
        except OSError as e:
            raise VppConnectError(f"cannot map VPP stats segment via {self.socket_path}: {e}") from e
        return self

    def close(self) -> None:
        if self._stats.connected:
            self._stats.disconnect()

    def __enter__(self) -> "StatsReader":
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, name: str):
        try:
            return self._stats[name]
        except (KeyError, IOError) as e:
            raise VppError(f"stats segment has no usable {name}: {e}") from e

    def interface_counters(self) -> list[InterfaceCounters]:
        names = self._get("/if/names")
        rx = self._get("/if/rx")
        tx = self._get("/if/tx")
        drops = self._get("/if/drops")
        out = []
        for i, name in enumerate(names):
            if not name:
                continue  # a freed interface index
            out.append(InterfaceCounters(
                sw_if_index=i,
                name=name,
                rx_packets=sum(t[i]["packets"] for t in rx),
                rx_bytes=sum(t[i]["bytes"] for t in rx),
                tx_packets=sum(t[i]["packets"] for t in tx),
                tx_bytes=sum(t[i]["bytes"] for t in tx),
                drops=sum(t[i] for t in drops),
            ))
        return out

    def error_counters(self) -> dict[str, int]:
        """Non-zero error counters, e.g. {'/err/ip4-input/ip4 ttl <= 1': 3}."""
        out = {}
        for name in self._stats.ls(["^/err/"]):
            try:
                total = sum(self._stats[name])
            except (TypeError, KeyError, IOError):
                continue
            if total:
                out[name] = total
        return out
