"""The OCI image the containerd tier builds: a well-formed layout, refused from bad inputs.

(That containerd accepts it is shown by every test in test_ctr_cni.py, which imports it.)
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile

import pytest

from tests.containerd.image import APPLETS, BUSYBOX, IMAGE_REF, ImageBuildError, layer, oci_archive

pytestmark = pytest.mark.skipif(not os.path.isfile(BUSYBOX), reason=f"{BUSYBOX} missing (busybox-static)")


def _files(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_the_layout_is_consistent_and_reproducible() -> None:
    archive = oci_archive()
    files = _files(archive)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    index = json.loads(files["index.json"])
    desc = index["manifests"][0]
    assert desc["annotations"]["io.containerd.image.name"] == IMAGE_REF
    manifest = json.loads(files["blobs/sha256/" + desc["digest"].split(":")[1]])
    assert len(files["blobs/sha256/" + desc["digest"].split(":")[1]]) == desc["size"]
    config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"].split(":")[1]])
    assert config["rootfs"]["diff_ids"] == [manifest["layers"][0]["digest"]]
    rootfs = files["blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1]]
    with tarfile.open(fileobj=io.BytesIO(rootfs)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin/busybox"].size == os.path.getsize(BUSYBOX)
    assert all(members[f"bin/{a}"].issym() and members[f"bin/{a}"].linkname == "busybox" for a in APPLETS)
    assert oci_archive() == archive  # same input, same digests


def test_a_missing_or_dynamic_busybox_is_refused(tmp_path) -> None:
    with pytest.raises(ImageBuildError, match="does not exist"):
        layer(str(tmp_path / "nope"))
    with pytest.raises(ImageBuildError, match="dynamically linked"):
        layer("/bin/ls")
    (tmp_path / "text").write_text("#!/bin/sh\n")
    with pytest.raises(ImageBuildError, match="not an ELF"):
        layer(str(tmp_path / "text"))
