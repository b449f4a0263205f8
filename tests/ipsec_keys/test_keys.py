"""Node key files and public key annotations (unit tier: files in tmp_path, no privileges)."""
from __future__ import annotations

import base64
import logging
import os
import stat

import pytest

from ipsec import BadPeerKey, KeyFileError, NodeKey, decode_public, encode_public, load, load_or_create


def test_key_file_is_created_0600_and_reloaded_identically(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "keys" / "ipsec.key"
    k1 = load_or_create(path)
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size == 32
    assert path.read_bytes() == k1.private
    k2 = load_or_create(path)
    assert k2 == k1
    assert [p.name for p in path.parent.iterdir()] == ["ipsec.key"]  # no temporary file left
    # The private key never reaches a log record, in any encoding, nor the repr.
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for enc in (k1.private.hex(), base64.b64encode(k1.private).decode(), repr(k1.private)):
        assert enc not in text
        assert enc not in repr(k1)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_key_file_readable_by_others_is_refused(tmp_path, mode):
    path = tmp_path / "k"
    key = NodeKey.generate()
    path.write_bytes(key.private)
    os.chmod(path, mode)
    with pytest.raises(KeyFileError) as e:
        load_or_create(path)
    assert "0600" in str(e.value) and str(path) in str(e.value)
    assert key.private.hex() not in str(e.value)
    assert path.read_bytes() == key.private  # never replaced behind the operator's back


@pytest.mark.parametrize("content", [b"", b"short", bytes(32), os.urandom(33)])
def test_corrupt_key_file_is_refused(tmp_path, content):
    path = tmp_path / "k"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError):
        load(path)
    assert path.read_bytes() == content


def test_key_path_that_is_a_directory_is_refused(tmp_path):
    (tmp_path / "k").mkdir(mode=0o700)
    with pytest.raises(KeyFileError):
        load_or_create(tmp_path / "k")


def test_public_key_annotation_round_trip():
    k = NodeKey.generate()
    text = encode_public(k.public)
    assert k.annotation == text
    assert decode_public(text, node="n1") == k.public
    assert decode_public(f"  {text}\n", node="n1") == k.public


@pytest.mark.parametrize("value,problem", [
    (None, "missing"), ("", "missing"), ("not base64!!", "not base64"),
    (base64.b64encode(b"x" * 31).decode(), "31 bytes"), (base64.b64encode(bytes(32)).decode(), "all-zero"),
])
def test_bad_public_key_annotation_is_a_typed_error(value, problem):
    with pytest.raises(BadPeerKey) as e:
        decode_public(value, node="worker-7")
    assert e.value.node == "worker-7"
    assert problem in str(e.value)
    if value:
        assert value not in str(e.value)  # the value itself is never echoed
