"""TRex profiles: the generated file is parsed back and its frames checked byte by byte."""
from __future__ import annotations

import ast
import struct
from collections import Counter
from pathlib import Path

import pytest

from perf.runner.loadgen import trex


def _frames(source: str) -> list[tuple[bytes, int]]:
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "FRAMES")
    return [(bytes.fromhex(h), w) for h, w in ast.literal_eval(node.value)]


def _ones_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _check_udp_frame(frame: bytes, a: trex.Addressing) -> None:
    assert frame[:6] == bytes.fromhex(a.dst_mac.replace(":", ""))
    assert frame[6:12] == bytes.fromhex(a.src_mac.replace(":", ""))
    assert frame[12:14] == b"\x08\x00"
    ip = frame[14:34]
    assert ip[0] == 0x45 and ip[9] == 17
    assert struct.unpack("!H", ip[2:4])[0] == len(frame) - 14
    assert _ones_sum(ip) == 0xFFFF  # header checksum valid
    assert ip[12:16] == bytes(map(int, a.src_ip.split("."))) and ip[16:20] == bytes(map(int, a.dst_ip.split(".")))
    udp = frame[34:]
    sport, dport, length, _ = struct.unpack("!HHHH", udp[:8])
    assert (sport, dport, length) == (a.src_port, a.dst_port, len(udp))
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, len(udp))
    assert _ones_sum(pseudo + udp) == 0xFFFF  # UDP checksum valid


def test_udp64_profile_is_one_minimum_size_frame() -> None:
    a = trex.Addressing()
    frames = _frames(trex.render(trex.PROFILES["udp64"], a))
    assert len(frames) == 1
    frame, weight = frames[0]
    assert len(frame) + trex.FCS == 64
    _check_udp_frame(frame, a)


def test_imix_profile_has_the_simple_imix_sizes_and_packet_ratios() -> None:
    a = trex.Addressing(src_ip="10.244.1.7", dst_ip="10.244.2.9", dst_port=9)
    source = trex.render(trex.PROFILES["imix"], a)
    compile(source, "trex_imix.py", "exec")  # valid Python for TRex to load
    frames = _frames(source)
    sizes = Counter({len(f) + trex.FCS: w for f, w in frames})
    assert sizes == Counter({64: 7, 594: 4, 1518: 1})
    for frame, _ in frames:
        _check_udp_frame(frame, a)
    # average on-the-wire size of simple IMIX
    assert sum(s * w for s, w in sizes.items()) / sum(sizes.values()) == pytest.approx(4342 / 12)
    tree = ast.parse(source)
    assert any(isinstance(n, ast.FunctionDef) and n.name == "register" for n in tree.body)


def test_write_puts_the_profile_in_the_results(tmp_path: Path) -> None:
    path = trex.write("imix", tmp_path)
    assert path.name == "trex_imix.py"
    assert len(_frames(path.read_text())) == 3


def test_too_small_frames_are_refused() -> None:
    with pytest.raises(ValueError, match="no room"):
        trex.udp_frame(40)


def test_without_t_rex_64_it_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "t-rex-64 is not installed" in trex.unavailable()
    fake = tmp_path / "t-rex-64"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.delenv("VPPAGENT_TREX_CFG", raising=False)
    assert "VPPAGENT_TREX_CFG" in trex.unavailable()
