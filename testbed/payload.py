"""Payloads sent between two network namespaces and checked end to end, and what the receiving
kernel says of them: the data-path tiers' proof that checksums and segmentation came out right.

Owns the sender and receiver scripts (``python -c``, run in a netns): TCP sends one seeded stream,
UDP a list of seeded datagrams; each side prints byte counts and SHA-256 hashes, so equal output
means the payload arrived whole. A TCP receiver that hears nothing for a while prints what it has,
so that a stalled transfer is a mismatch, not a hang. Also the kernel's checksum-error counters
(``nstat``), the packets VPP drops, and a link's offload features (``ethtool -k``).
"""
from __future__ import annotations

import contextlib
import ipaddress
import secrets
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vppagent.vpp.errors import VppApiError

TCP_BYTES = 8 << 20

SINK = r"""
import hashlib, socket, sys
proto, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
if proto == "tcp":
    s = socket.socket(fam, socket.SOCK_STREAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(1); s.settimeout(30); print("ready", flush=True)
    c, _ = s.accept(); c.settimeout(8); h = hashlib.sha256(); n = 0
    try:
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            h.update(b); n += len(b)
    except socket.timeout:
        pass
    print(n, h.hexdigest(), flush=True)
else:
    s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((addr, port)); s.settimeout(10); print("ready", flush=True)
    got = []
    while True:
        b, _ = s.recvfrom(65535)
        if b == b"end":
            break
        got.append(hashlib.sha256(b).hexdigest()[:16])
    print(" ".join(got), flush=True)
"""

SOURCE = r"""
import hashlib, random, socket, sys, time
proto, addr, port, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(7)
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
if proto == "tcp":
    data = rnd.randbytes(size)
    c = socket.create_connection((addr, port), timeout=20); c.settimeout(25)
    try:
        c.sendall(data); c.shutdown(socket.SHUT_WR); c.recv(1)
    except OSError:
        pass
    print(len(data), hashlib.sha256(data).hexdigest())
else:
    s = socket.socket(fam, socket.SOCK_DGRAM); out = []
    for n in [int(x) for x in sys.argv[5].split(",")]:
        b = rnd.randbytes(n); s.sendto(b, (addr, port)); out.append(hashlib.sha256(b).hexdigest()[:16])
        time.sleep(0.05)
    s.sendto(b"end", (addr, port)); print(" ".join(out))
"""


def _in(ns: str | None) -> list[str]:
    return ["ip", "netns", "exec", ns] if ns else []


def exchange(client_ns: str, server_ns: str, proto: str, to: str, *, bind: str, port: int,
             tcp_bytes: int = TCP_BYTES, udp_sizes: tuple[int, ...] = (200, 1300)) -> tuple[str, str]:
    """(what the client sent, what the server received), as printed: equal when the payload arrived whole."""
    sink = subprocess.Popen([*_in(server_ns), sys.executable, "-c", SINK, proto, bind, str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready", sink.stderr
        sent = subprocess.run([*_in(client_ns), sys.executable, "-c", SOURCE, proto, to, str(port), str(tcp_bytes),
                               ",".join(str(n) for n in udp_sizes)], capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        out, err = sink.communicate(timeout=40)
        return sent.stdout.strip(), out.strip() or err.strip()
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait(timeout=5)


def csum_errors(ns: str) -> dict[str, int]:
    """The kernel's checksum-error counters in ``ns`` (TCP, UDP, IPv4, IPv6)."""
    r = subprocess.run([*_in(ns), "nstat", "-az", "TcpInCsumErrors", "UdpInCsumErrors", "Udp6InCsumErrors",
                        "IpExtInCsumErrors", "Ip6InCsumErrors"], capture_output=True, text=True, timeout=10, check=True)
    return {line.split()[0]: int(line.split()[1]) for line in r.stdout.splitlines()[1:] if line.strip()}


@contextlib.contextmanager
def vpp_drops(vpp, tag: str) -> Iterator[list[str]]:
    """The packets VPP drops while the block runs, filled in as it exits, the background left out:
    empty means VPP dropped none of the transfer.

    Read from VPP's own drop capture (``pcap trace drop``), not from ``show errors``: VPP 26.06
    files many plain statistics there as errors (af_packet's TPACKET_V3 blocks, vxlan's "good
    packets decapsulated"), and it names each dropped packet, not only a count.
    """
    stem = f"vppagent-drops-{tag}-{secrets.token_hex(3)}"
    found: list[str] = []
    vpp.call("cli_inband", cmd=f"pcap trace drop max 10000 file {stem}")
    try:
        yield found
    finally:
        status = vpp.call("cli_inband", cmd="pcap trace status").reply
        try:
            vpp.call("cli_inband", cmd="pcap trace off")
        except VppApiError:
            if "capture enabled: 0 of" not in status:
                raise  # else VPP turns the capture off and answers "No packets captured"
        path = Path(tempfile.gettempdir()) / f"{stem}.pcap"  # VPP writes its captures to /tmp
        if path.exists():
            found += [d for d in (_describe(f) for f in _pcap_frames(path.read_bytes())) if d is not None]
            path.unlink()


def _pcap_frames(data: bytes) -> Iterator[bytes]:
    """The frames of a little-endian, Ethernet pcap file (what VPP writes)."""
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", data)
    if magic != 0xA1B2C3D4 or linktype != 1:
        raise ValueError(f"not a little-endian Ethernet pcap (magic {magic:#x}, linktype {linktype})")
    at = 24
    while at + 16 <= len(data):
        caplen = struct.unpack_from("<IIII", data, at)[2]
        yield data[at + 16:at + 16 + caplen]
        at += 16 + caplen


def _describe(frame: bytes) -> str | None:
    """One dropped frame, said in a line; None for the background: the pods' and veths' own IPv6
    link chatter (router solicitations, MLD reports, neighbour discovery) to an interface that
    does not route IPv6."""
    ethertype = int.from_bytes(frame[12:14], "big")
    ip = frame[14:]
    if ethertype == 0x0800 and len(ip) >= 20:
        return f"IPv4 {ipaddress.IPv4Address(ip[12:16])} -> {ipaddress.IPv4Address(ip[16:20])} proto {ip[9]}"
    if ethertype == 0x86DD and len(ip) >= 40:
        src, dst = ipaddress.IPv6Address(ip[8:24]), ipaddress.IPv6Address(ip[24:40])
        if ip[6] in (0, 58) and (src.is_link_local or src.is_unspecified) and (dst.is_multicast or dst.is_link_local):
            return None
        return f"IPv6 {src} -> {dst} next header {ip[6]}"
    return f"ethertype {ethertype:#06x}, {len(frame)} bytes"


def ethtool_features(ns: str | None, ifname: str) -> dict[str, str]:
    """``ethtool -k ifname`` in ``ns`` (None: here): feature -> on/off."""
    r = subprocess.run([*_in(ns), "ethtool", "-k", ifname], capture_output=True, text=True, timeout=10, check=True)
    out = {}
    for line in r.stdout.splitlines()[1:]:
        name, _, rest = line.partition(":")
        if rest.split():
            out[name.strip()] = rest.split()[0]
    return out


__all__ = ["SINK", "SOURCE", "TCP_BYTES", "csum_errors", "ethtool_features", "exchange", "vpp_drops"]
