"""iperf3 between the client and server pods of a Setup, and its JSON output parsed.

Owns the iperf3 command lines (TCP or UDP, parallel streams, bitrate and
length for UDP) and turning ``iperf3 -J`` output into an ``Iperf3Result``.
The receiver's rate is the figure: for TCP iperf3's ``sum_received``, for
UDP the packets that arrived (sent minus lost).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from perf.runner.scenario import Load

PORT = 5201


class Iperf3Error(RuntimeError):
    """iperf3 failed or printed something that is not its JSON report."""


@dataclass(frozen=True)
class Iperf3Result:
    protocol: str
    streams: int
    seconds: float
    bytes_received: int
    gbit_s: float                      # received
    sent_gbit_s: float
    retransmits: int | None = None     # TCP
    packets: int | None = None         # UDP: datagrams sent
    lost_packets: int | None = None    # UDP
    lost_percent: float | None = None  # UDP

    @property
    def udp_mpps(self) -> float | None:
        if self.packets is None or not self.seconds:
            return None
        return (self.packets - (self.lost_packets or 0)) / self.seconds / 1e6


def client_args(load: Load, target: str, seconds: int, port: int = PORT) -> list[str]:
    argv = ["iperf3", "-c", target, "-p", str(port), "-t", str(seconds), "-J", "-P", str(load.parallel),
            "--connect-timeout", "3000"]
    if load.protocol == "udp":
        argv += ["-u", "-b", load.bitrate]
        if load.length:
            argv += ["-l", str(load.length)]
    elif load.length:
        argv += ["-M", str(load.length)]
    return argv


def server_args(port: int = PORT) -> list[str]:
    return ["iperf3", "-s", "-1", "-p", str(port)]


def parse(text: str) -> Iperf3Result:
    """An Iperf3Result from ``iperf3 -c ... -J`` output."""
    try:
        doc: dict[str, Any] = json.loads(text)
    except ValueError as e:
        raise Iperf3Error(f"iperf3 output is not JSON: {text.strip()[-300:]!r}") from e
    if doc.get("error"):
        raise Iperf3Error(f"iperf3: {doc['error']}")
    try:
        start, end = doc["start"], doc["end"]
        protocol = start["test_start"]["protocol"].lower()
        streams = int(start["test_start"]["num_streams"])
        if protocol == "tcp":
            recv, sent = end["sum_received"], end["sum_sent"]
            return Iperf3Result("tcp", streams, float(recv["seconds"]), int(recv["bytes"]),
                                recv["bits_per_second"] / 1e9, sent["bits_per_second"] / 1e9,
                                retransmits=sent.get("retransmits"))
        total = end["sum"]
        seconds = float(total["seconds"])
        packets, lost = int(total["packets"]), int(total["lost_packets"])
        sent_bytes = int(total["bytes"])
        got = packets - lost
        # iperf3 3.12 reports the sender's bytes in end.sum; what arrived is the delivered share.
        received = sent_bytes * got // packets if packets else 0
        return Iperf3Result("udp", streams, seconds, received, received * 8 / seconds / 1e9 if seconds else 0.0,
                            total["bits_per_second"] / 1e9, packets=packets, lost_packets=lost,
                            lost_percent=float(total["lost_percent"]))
    except (KeyError, TypeError, ZeroDivisionError) as e:
        raise Iperf3Error(f"iperf3 JSON lacks {e} (keys: {sorted(doc)})") from e


def run(client_prefix: list[str], server_prefix: list[str], load: Load, target: str, seconds: int,
        port: int = PORT) -> Iperf3Result:
    """One iperf3 run: a one-shot server in the server pod, the client in the client pod."""
    if shutil.which("iperf3") is None:
        raise Iperf3Error("iperf3 is not installed")
    server = subprocess.Popen(server_prefix + server_args(port), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.4)  # the server binds
        if server.poll() is not None:
            raise Iperf3Error(f"iperf3 server exited: {server.stderr.read().strip()[-300:] if server.stderr else ''}")
        try:
            r = subprocess.run(client_prefix + client_args(load, target, seconds, port), capture_output=True,
                               text=True, timeout=seconds + 30)
        except subprocess.TimeoutExpired as e:
            raise Iperf3Error(f"iperf3 client hung (no result within {seconds + 30} s)") from e
        return parse(r.stdout if r.stdout.strip() else r.stderr)
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=10)
