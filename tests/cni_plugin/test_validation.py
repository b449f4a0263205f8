"""Every way an invocation can be malformed gets the spec's error code, before any agent call."""
from __future__ import annotations

import json

import pytest

from vppagent.cni.plugin import LATEST_VERSION, SUPPORTED_VERSIONS, handle

from .conftest import cni_env, dumps, spec_netconf


def test_version_lists_every_supported_spec_version():
    out = handle({"CNI_COMMAND": "VERSION"}, b"")
    assert out.exit_code == 0
    assert out.document == {"cniVersion": "1.1.0",
                            "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}


@pytest.mark.parametrize("env", [{}, {"CNI_COMMAND": ""}, {"CNI_COMMAND": "ADDX"},
                                 {"CNI_COMMAND": "add"}])
def test_missing_or_unknown_command_is_an_invalid_environment(env):
    out = handle(env, dumps(spec_netconf()))
    assert (out.exit_code, out.document["code"]) == (1, 4)


@pytest.mark.parametrize("stdin", [b"{not json", b"", b"\xff\xfe{}", b'{"cniVersion": "1.0.0",'])
def test_undecodable_netconf_is_code_6(stdin):
    out = handle(cni_env("ADD"), stdin)
    assert (out.exit_code, out.document["code"]) == (1, 6)
    assert out.document["cniVersion"] == LATEST_VERSION


@pytest.mark.parametrize("missing", ["cniVersion", "name", "type"])
def test_netconf_without_a_required_key_is_code_7(missing):
    conf = spec_netconf()
    del conf[missing]
    out = handle(cni_env("ADD"), dumps(conf))
    assert (out.exit_code, out.document["code"]) == (1, 7)
    assert missing in out.document["msg"]


@pytest.mark.parametrize("key,value", [
    ("cniVersion", 1.0), ("name", 5), ("name", "-bad"), ("name", "a b"), ("type", None),
    ("type", ""), ("agentSocket", 5), ("agentSocket", "relative/cni.sock"),
    ("timeoutSeconds", "30"), ("timeoutSeconds", True), ("timeoutSeconds", 0),
    ("timeoutSeconds", -1), ("mtu", "1500"), ("mtu", 10), ("prevResult", []),
])
def test_netconf_with_a_wrong_type_or_value_is_code_7(key, value):
    out = handle(cni_env("ADD"), dumps(spec_netconf(**{key: value})))
    assert (out.exit_code, out.document["code"]) == (1, 7), out.document


def test_a_netconf_that_is_not_an_object_is_code_7():
    out = handle(cni_env("ADD"), b'["cniVersion", "1.0.0"]')
    assert out.document["code"] == 7


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0", "1.2.0", "2.0.0", "banana"])
def test_unsupported_cni_version_is_code_1(version):
    out = handle(cni_env("ADD"), dumps(spec_netconf(cniVersion=version)))
    assert (out.exit_code, out.document["code"]) == (1, 1)
    assert out.document["cniVersion"] == LATEST_VERSION
    assert "1.1.0" in out.document["details"]


@pytest.mark.parametrize("command,version", [("CHECK", "0.3.1"), ("CHECK", "0.3.0"),
                                             ("STATUS", "1.0.0"), ("GC", "1.0.0"),
                                             ("GC", "0.4.0")])
def test_commands_newer_than_the_config_version_are_code_1(command, version):
    out = handle(cni_env(command), dumps(spec_netconf(cniVersion=version)))
    assert (out.exit_code, out.document["code"]) == (1, 1)
    assert command in out.document["msg"]
    assert out.document["cniVersion"] == version


@pytest.mark.parametrize("command", ["ADD", "CHECK"])
@pytest.mark.parametrize("var", ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"])
def test_add_and_check_need_their_environment(command, var):
    conf = spec_netconf(prevResult={"cniVersion": "1.1.0", "ips": []})
    out = handle(cni_env(command, **{var: None}), dumps(conf))
    assert (out.exit_code, out.document["code"]) == (1, 4)
    assert var in out.document["details"]
    assert out.document["cniVersion"] == "1.1.0"


@pytest.mark.parametrize("var", ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"])
def test_del_needs_container_and_ifname(var):
    out = handle(cni_env("DEL", **{var: None}), dumps(spec_netconf()))
    assert (out.exit_code, out.document["code"]) == (1, 4)


@pytest.mark.parametrize("var,value", [
    ("CNI_CONTAINERID", "-leading-dash"), ("CNI_CONTAINERID", "has space"),
    ("CNI_CONTAINERID", "semi;colon"), ("CNI_IFNAME", "a" * 16), ("CNI_IFNAME", "."),
    ("CNI_IFNAME", "eth/0"), ("CNI_IFNAME", "eth:0"), ("CNI_IFNAME", "eth 0"),
    ("CNI_NETNS", "var/run/netns/relative"), ("CNI_ARGS", "K8S_POD_NAME"),
    ("CNI_ARGS", "A=1;=2"),
])
def test_malformed_environment_values_are_code_4(var, value):
    out = handle(cni_env("ADD", **{var: value}), dumps(spec_netconf()))
    assert (out.exit_code, out.document["code"]) == (1, 4), out.document
    assert var in out.document["msg"]


def test_gc_without_valid_attachments_is_refused_rather_than_collecting_everything():
    out = handle(cni_env("GC"), dumps(spec_netconf()))
    assert (out.exit_code, out.document["code"]) == (1, 7)
    assert "cni.dev/valid-attachments" in out.document["msg"]


@pytest.mark.parametrize("attachments", [{"containerID": "a"}, [{"containerID": "a"}],
                                         [{"containerID": 1, "ifname": "eth0"}], ["a"]])
def test_gc_with_malformed_valid_attachments_is_code_7(attachments):
    conf = spec_netconf(**{"cni.dev/valid-attachments": attachments})
    out = handle(cni_env("GC"), dumps(conf))
    assert (out.exit_code, out.document["code"]) == (1, 7)


def test_check_without_prev_result_is_code_7():
    out = handle(cni_env("CHECK"), dumps(spec_netconf()))
    assert (out.exit_code, out.document["code"]) == (1, 7)
    assert "prevResult" in out.document["msg"]


@pytest.mark.parametrize("prev", [
    {"interfaces": [{"name": "eth0"}], "ips": [{"address": "10.1.0.5/16", "interface": 1}]},
    {"ips": [{"address": "not-an-ip"}]},
    {"ips": [{"address": "10.1.0.5/16", "interface": True}], "interfaces": [{}]},
    {"routes": "0.0.0.0/0"},
    {"dns": []},
])
def test_malformed_prev_result_is_code_7(prev):
    out = handle(cni_env("ADD"), dumps(spec_netconf(prevResult={"cniVersion": "1.1.0", **prev})))
    assert (out.exit_code, out.document["code"]) == (1, 7)
    assert "prevResult" in out.document["msg"]


def test_errors_are_single_json_documents_with_the_spec_fields():
    out = handle(cni_env("ADD", CNI_IFNAME="x" * 20), dumps(spec_netconf(cniVersion="0.4.0")))
    doc = json.loads(json.dumps(out.document))
    assert set(doc) == {"cniVersion", "code", "msg", "details"}
    assert doc["cniVersion"] == "0.4.0"


def test_supported_versions_are_ordered_oldest_first():
    keys = [tuple(int(p) for p in v.split(".")) for v in SUPPORTED_VERSIONS]
    assert keys == sorted(keys)
