"""The socket protocol: handshake, message table, contexts, dumps, pipelining,
client_index routing, unimplemented messages, disconnects and restarts."""
from __future__ import annotations

import json
import socket
import struct
import time

import pytest

from vppagent.vpp.retvals import Retval

HEADER = struct.Struct(">QII")


class RawClient:
    """A bare socket speaking the framing, to control exactly what is sent."""

    def __init__(self, path: str, papi):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(path)
        self.papi = papi  # a connected VPPApiClient: its message table and codecs
        self.buf = b""

    def msg_id(self, name: str) -> int:
        m = self.papi.messages[name]
        return self.papi.transport.get_msg_index(f"{name}_{m.crc[2:]}")

    def pack(self, msg: str, **fields) -> bytes:
        fields["_vl_msg_id"] = 15 if msg == "sockclnt_create" else self.msg_id(msg)
        return self.papi.messages[msg].pack(fields)

    def send(self, *payloads: bytes) -> None:
        self.sock.sendall(b"".join(HEADER.pack(0, len(p), 0) + p for p in payloads))

    def frame(self) -> bytes | None:
        while True:
            if len(self.buf) >= HEADER.size:
                length = HEADER.unpack_from(self.buf)[1]
                if len(self.buf) >= HEADER.size + length:
                    data = self.buf[HEADER.size:HEADER.size + length]
                    self.buf = self.buf[HEADER.size + length:]
                    return data
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return None
            self.buf += chunk

    def decode(self, data: bytes):
        msg_id = struct.unpack_from(">H", data)[0]
        name = self.papi.id_names[msg_id]
        return name, self.papi.messages[name].unpack(data)[0]

    def handshake(self) -> int:
        self.send(self.pack("sockclnt_create", context=7, name="raw"))
        name, reply = self.decode(self.frame())
        assert name == "sockclnt_create_reply" and reply.context == 7
        return reply.index

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(emu, vpp):
    clients = []

    def make() -> RawClient:
        c = RawClient(emu.socket_path, vpp)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


def test_handshake_gives_vpps_fixed_ids_and_the_whole_table(emu, vpp, definitions):
    table = vpp.transport.message_table
    crc = {name: m.crc[2:] for name, m in vpp.messages.items()}
    assert table[f"sockclnt_create_{crc['sockclnt_create']}"] == 15
    assert table[f"sockclnt_create_reply_{crc['sockclnt_create_reply']}"] == 16
    assert table[f"control_ping_{crc['control_ping']}"] == 23
    assert table[f"control_ping_reply_{crc['control_ping_reply']}"] == 24
    # Every message of every definition file, memclnt's first (1..28).
    assert len(table) == len(vpp.messages) == sum(f.n_messages for f in definitions.files)
    memclnt = json.loads((definitions.directory / "core" / "memclnt.api.json").read_text())
    for i, m in enumerate(memclnt["messages"], start=1):
        assert table[f"{m[0]}_{m[-1]['crc'][2:]}"] == i
    assert sorted(table.values()) == list(range(1, len(table) + 1))


def test_client_index_is_a_socket_handle(emu, vpp, connect):
    other = connect(emu, "second")
    assert vpp.transport.socket_index == 0x80000001
    assert other.transport.socket_index == 0x80000002
    assert sorted(name for _, name in emu.clients()) == ["second", "test"]


def test_get_first_msg_id_names_module_ranges(emu, vpp, definitions):
    ip = next(f for f in definitions.files if f.module == "ip")
    reply = vpp.api.get_first_msg_id(name=ip.range_name)
    assert reply.retval == 0 and reply.first_msg_id == ip.first_msg_id
    assert vpp.id_names[ip.first_msg_id] == json.loads(ip.path.read_text())["messages"][0][0]
    missing = vpp.api.get_first_msg_id(name="nosuchmodule_12345678")
    assert missing.retval == Retval.INVALID_VALUE and missing.first_msg_id == 0xFFFF


def test_ping_and_version(emu, vpp):
    ping = vpp.api.control_ping()
    assert ping.retval == 0 and ping.vpe_pid == emu.pid
    version = vpp.api.show_version()
    assert version.program == "vpe" and version.version.startswith("26.06")
    assert "emulator" in version.version


def test_api_versions_and_json_for_bootstrapping_clients(emu, vpp, definitions):
    versions = vpp.api.api_versions()
    assert {v.name for v in versions.api_versions} == {f.module for f in definitions.files}
    blob = json.loads(vpp.api.get_api_json().json)
    assert len(blob) == len(definitions.files)


def test_unimplemented_message_answers_unimplemented(emu, vpp):
    reply = vpp.api.bfd_udp_add(sw_if_index=0, local_addr="1.1.1.1", peer_addr="1.1.1.2")
    assert reply.retval == Retval.UNIMPLEMENTED


def test_unimplemented_stream_answers_unimplemented(emu, vpp):
    reply, details = vpp.api.sw_interface_tx_placement_get(sw_if_index=0xFFFFFFFF)
    assert reply.retval == Retval.UNIMPLEMENTED and details == []


def test_unknown_message_id_and_no_reply_messages_are_dropped(emu, raw):
    c = raw()
    index = c.handshake()
    bogus = struct.pack(">HII", 0xFFF0, index, 1)
    no_reply = c.pack("memclnt_rx_thread_suspend", client_index=index, context=2)
    c.send(bogus, no_reply, c.pack("control_ping", client_index=index, context=3))
    name, reply = c.decode(c.frame())
    assert name == "control_ping_reply" and reply.context == 3


def test_pipelined_pings_are_all_answered_in_order(emu, raw):
    c = raw()
    index = c.handshake()
    n = 5000
    c.send(*(c.pack("control_ping", client_index=index, context=i) for i in range(1, n + 1)))
    contexts = []
    for _ in range(n):
        name, reply = c.decode(c.frame())
        assert name == "control_ping_reply"
        contexts.append(reply.context)
    assert contexts == list(range(1, n + 1))


def test_mixed_pipeline_keeps_request_order(emu, raw):
    c = raw()
    index = c.handshake()
    reqs = []
    for i in range(200):
        reqs.append(c.pack("create_loopback", client_index=index, context=2 * i + 1))
        reqs.append(c.pack("sw_interface_dump", client_index=index, context=2 * i + 2,
                           sw_if_index=0xFFFFFFFF))
    c.send(*reqs)
    for i in range(200):
        name, reply = c.decode(c.frame())
        assert (name, reply.context, reply.sw_if_index) == ("create_loopback_reply", 2 * i + 1, i + 1)
        names = []
        for _ in range(i + 2):  # local0 and the loopbacks so far
            name, details = c.decode(c.frame())
            assert name == "sw_interface_details" and details.context == 2 * i + 2
            names.append(details.interface_name)
        assert names == ["local0"] + [f"loop{k}" for k in range(i + 1)]


def test_replies_follow_client_index_not_the_socket(emu, raw):
    a, b = raw(), raw()
    index_a = a.handshake()
    b.handshake()
    # Sent on b, naming a: VPP answers a (REPLY_MACRO looks up client_index).
    b.send(b.pack("control_ping", client_index=index_a, context=11))
    name, reply = a.decode(a.frame())
    assert name == "control_ping_reply" and reply.context == 11
    # An unknown index: executed, answer dropped. The next ping proves b is fine.
    b.send(b.pack("create_loopback", client_index=0, context=12),
           b.pack("control_ping", client_index=index_a | 0x7F, context=13))
    a.send(a.pack("control_ping", client_index=index_a, context=14))
    name, reply = a.decode(a.frame())
    assert reply.context == 14
    with emu.locked():
        assert emu.interfaces.by_name("loop0") is not None


def test_sockclnt_delete_answers_then_closes(emu, raw):
    c = raw()
    index = c.handshake()
    c.send(c.pack("sockclnt_delete", client_index=index, context=5, index=index),
           c.pack("control_ping", client_index=index, context=6))
    name, reply = c.decode(c.frame())
    assert name == "sockclnt_delete_reply" and reply.context == 5 and reply.response == 1
    assert c.frame() is None  # closed; the ping after it is not processed


def test_papi_disconnect_is_clean(emu, connect):
    client = connect(emu, "short-lived")
    reply = client.disconnect()
    assert reply.response == 1  # VPP's "found and deleted"
    deadline = time.monotonic() + 5
    while emu.clients() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emu.clients() == []


def test_undecodable_request_gets_vpps_retval(emu, vpp, raw):
    c = raw()
    index = c.handshake()
    body = bytearray(c.pack("sw_interface_add_del_address", client_index=index, context=9,
                            sw_if_index=0, is_add=True, prefix="10.0.0.1/24"))
    body[-1] = 40  # prefix length 40 for IPv4: vpp_papi cannot build it, VPP refuses it
    c.send(bytes(body))
    name, reply = c.decode(c.frame())
    assert name == "sw_interface_add_del_address_reply"
    assert reply.retval == Retval.ADDRESS_LENGTH_MISMATCH


def test_restart_wipes_state_and_disconnects_clients(emu, vpp, raw, connect):
    c = raw()
    c.handshake()
    assert vpp.api.create_loopback().sw_if_index == 1
    emu.restart()
    assert c.frame() is None  # the client sees the disconnect
    with emu.locked():
        assert [i.name for i in emu.interfaces] == ["local0"]
    fresh = connect(emu, "after-restart")
    assert fresh.transport.socket_index == 0x80000001
    assert fresh.api.create_loopback().sw_if_index == 1
    assert [d.interface_name for d in fresh.api.sw_interface_dump()] == ["local0", "loop0"]
