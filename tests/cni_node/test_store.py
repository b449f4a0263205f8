"""Attachment records: JSON round trip, atomic files, the on-disk store."""
from __future__ import annotations

import json
import logging
import os
import stat

import pytest

from vppagent.atomic import CorruptFile, read_json, write_json
from vppagent.cni.store import AttachmentStore
from vppagent.model.podnet import Attachment, Driver, InvalidAttachment


def attachment(cid: str = "abc123", ifname: str = "eth0", **kw) -> Attachment:
    base = dict(container_id=cid, ifname=ifname, netns="/var/run/netns/cni-1234",
                pod_namespace="default", pod_name="web-0", pod_uid="u-1", driver=Driver.VETH,
                host_ifname="vpp1a2b3c4d", ips=("10.244.1.5/32", "fd00:10::5/128"),
                pod_mac="02:00:00:00:00:01", vpp_mac="02:fe:00:00:00:02", mtu=1450)
    base.update(kw)
    return Attachment(**base)


def test_attachment_json_round_trip():
    for a in (attachment(), attachment(driver=Driver.MEMIF, host_ifname="",
                                       ips=("10.244.1.5/32", "memif:10.244.1.6/32"),
                                       memif_socket="/run/vpp/memif-abc.sock")):
        text = json.dumps(a.to_json())
        assert Attachment.from_json(json.loads(text)) == a


@pytest.mark.parametrize("change, reason", [
    (lambda d: d.pop("mtu"), "missing fields"),
    (lambda d: d.update(driver="sriov"), "unknown driver"),
    (lambda d: d.update(ips=["10.1.1.1/33"]), "not an address"),
    (lambda d: d.update(ips=["memif:nope"]), "not an address"),
    (lambda d: d.update(mtu="1500"), "mtu"),
    (lambda d: d.update(container_id=""), "must not be empty"),
])
def test_invalid_records_are_rejected_with_the_reason(change, reason):
    d = attachment().to_json()
    change(d)
    with pytest.raises(InvalidAttachment, match=reason):
        Attachment.from_json(d)


def test_atomic_write_leaves_mode_and_no_temporary(tmp_path):
    p = tmp_path / "x.json"
    old = os.umask(0o022)
    try:
        write_json(p, {"a": 1}, mode=0o640)
    finally:
        os.umask(old)
    assert read_json(p) == {"a": 1}
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    write_json(p, {"a": 2})
    assert read_json(p) == {"a": 2}
    assert [f.name for f in tmp_path.iterdir()] == ["x.json"]
    assert read_json(tmp_path / "missing.json") is None
    p.write_text('{"a": ')
    with pytest.raises(CorruptFile) as e:
        read_json(p)
    assert e.value.path == p


def test_store_round_trip_and_idempotent_delete(tmp_path):
    store = AttachmentStore(tmp_path)
    a, b = attachment("c1"), attachment("c1", "net1")
    store.put(a)
    store.put(b)
    assert store.get("c1", "eth0") == a and store.get("c1", "net1") == b
    assert sorted(store.all(), key=lambda x: x.ifname) == [a, b]
    assert AttachmentStore(tmp_path).all() != []          # survives a new instance
    store.delete("c1", "eth0")
    store.delete("c1", "eth0")
    assert store.get("c1", "eth0") is None
    assert store.all() == [b]
    assert stat.S_IMODE(next((tmp_path / "attachments").glob("*.json")).stat().st_mode) == 0o600


def test_file_names_do_not_collide(tmp_path):
    store = AttachmentStore(tmp_path)
    x, y = attachment("a+b", "c"), attachment("a", "b+c")
    store.put(x)
    store.put(y)
    assert store.get("a+b", "c") == x and store.get("a", "b+c") == y


def test_corrupt_files_are_skipped_logged_and_kept(tmp_path, caplog):
    store = AttachmentStore(tmp_path)
    good = attachment("good")
    store.put(good)
    store.put(attachment("torn"))
    store.put(attachment("wrong"))
    d = tmp_path / "attachments"
    (d / "torn+eth0.json").write_text('{"container_id": "torn", ')
    (d / "wrong+eth0.json").write_text(json.dumps({"container_id": "wrong"}))
    with caplog.at_level(logging.ERROR, logger="vppagent.cni.store"):
        assert store.all() == [good]
    assert len([r for r in caplog.records if "corrupt" in r.getMessage()]) == 2
    assert (d / "torn+eth0.json.corrupt").read_text() == '{"container_id": "torn", '
    assert (d / "wrong+eth0.json.corrupt").exists()
    assert store.all() == [good]
    assert store.get("torn", "eth0") is None
