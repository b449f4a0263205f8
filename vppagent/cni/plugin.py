"""``vppagent-cni``: the CNI plugin executable the container runtime calls.

Owns the CNI side of the contract (spec 1.0.0 and 1.1.0, answering 0.3.x and
0.4.0 callers too): reading CNI_COMMAND and the other CNI_* variables,
validating the network configuration on stdin, forwarding the invocation to
the node agent over gRPC on a unix socket, and printing exactly one JSON
document (a result or a spec error) in the caller's cniVersion.

It decides nothing about pods: IPAM, netns plumbing and VPP belong to the
agent. It is exec'd once per pod operation, so it imports grpc and the
generated stubs only for commands that talk to the agent, and nothing else
from vppagent.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Mapping, TextIO

LATEST_VERSION = "1.1.0"
SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")

DEFAULT_AGENT_SOCKET = "/var/run/vppagent/cni.sock"
DEFAULT_TIMEOUT_SECONDS = 30.0

# Codes the spec reserves (0-99).
ERR_INCOMPATIBLE_VERSION = 1
ERR_INVALID_ENV = 4
ERR_DECODE = 6
ERR_INVALID_NETCONF = 7
ERR_NOT_AVAILABLE = 50
# Ours (100 and up).
ERR_AGENT_UNREACHABLE = 100
ERR_INTERNAL = 101
ERR_AGENT_BAD_REPLY = 102

# A request travels to the agent as one gRPC message, whose default limit is 4 MiB; a network
# configuration is a few KB (prevResult included). Larger input is refused here, finally,
# instead of coming back from gRPC as a retryable "agent unreachable".
MAX_NETCONF_BYTES = 1 << 20

# The spec's rules for names (libcni applies the same ones).
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
_IFNAMSIZ = 16
_VALID_ATTACHMENTS_KEY = "cni.dev/valid-attachments"


class CniError(Exception):
    """A failure the runtime sees as a spec error document (exit code 1)."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(f"{code}: {msg}" + (f" ({details})" if details else ""))
        self.code = code
        self.msg = msg
        self.details = details

    def document(self, cni_version: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            doc["details"] = self.details
        return doc


@dataclass(frozen=True)
class Outcome:
    """What one invocation prints and returns. ``document`` None prints nothing."""

    exit_code: int
    document: dict[str, Any] | None


@dataclass(frozen=True)
class Invocation:
    """The CNI_* environment of one call."""

    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: str = ""
    path: str = ""


@dataclass(frozen=True)
class NetConf:
    """The validated network configuration; ``raw`` is forwarded to the agent untouched."""

    raw: bytes
    cni_version: str
    name: str
    type: str
    agent_socket: str
    timeout_seconds: float
    prev_result: dict[str, Any] | None = None  # 1.0.0 form
    valid_attachments: list[tuple[str, str]] = field(default_factory=list)


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


# ---------------------------------------------------------------- validation

def _read_invocation(env: Mapping[str, str]) -> Invocation:
    command = env.get("CNI_COMMAND", "")
    if not command:
        raise CniError(ERR_INVALID_ENV, "CNI_COMMAND is not set")
    if command not in COMMANDS:
        raise CniError(ERR_INVALID_ENV, f"unknown CNI_COMMAND {command!r}",
                       f"expected one of {', '.join(COMMANDS)}")
    return Invocation(command=command, container_id=env.get("CNI_CONTAINERID", ""),
                      netns=env.get("CNI_NETNS", ""), ifname=env.get("CNI_IFNAME", ""),
                      args=env.get("CNI_ARGS", ""), path=env.get("CNI_PATH", ""))


def _check_environment(inv: Invocation) -> None:
    """The variables the spec makes mandatory for this command, and their form."""
    need = {
        "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
        "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
        # DEL must go through when the netns is already gone: the agent cleans up anyway.
        "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    }.get(inv.command, ())
    values = {"CNI_CONTAINERID": inv.container_id, "CNI_NETNS": inv.netns,
              "CNI_IFNAME": inv.ifname, "CNI_PATH": inv.path}
    missing = [k for k in need if not values[k]]
    if missing:
        raise CniError(ERR_INVALID_ENV, f"required environment variables missing for {inv.command}",
                       ", ".join(missing))
    if "CNI_CONTAINERID" in need and not _NAME_RE.match(inv.container_id):
        raise CniError(ERR_INVALID_ENV, "invalid CNI_CONTAINERID",
                       f"{inv.container_id!r}: must start with an alphanumeric character and "
                       "contain only alphanumerics, '_', '.' and '-'")
    if "CNI_IFNAME" in need:
        _check_ifname(inv.ifname)
    if "CNI_NETNS" in need and not inv.netns.startswith("/"):
        raise CniError(ERR_INVALID_ENV, "invalid CNI_NETNS", f"{inv.netns!r} is not an absolute path")
    for pair in filter(None, inv.args.split(";")):
        key, sep, _ = pair.partition("=")
        if not sep or not key:
            raise CniError(ERR_INVALID_ENV, "invalid CNI_ARGS",
                           f"{pair!r} is not KEY=VALUE (pairs are separated by ';')")


def _check_ifname(name: str) -> None:
    reason = ""
    if len(name) >= _IFNAMSIZ:
        reason = f"longer than {_IFNAMSIZ - 1} characters"
    elif name in (".", ".."):
        reason = "'.' and '..' are not interface names"
    elif any(c in "/:" or c.isspace() for c in name):
        reason = "contains '/', ':' or whitespace"
    if reason:
        raise CniError(ERR_INVALID_ENV, "invalid CNI_IFNAME", f"{name!r}: {reason}")


def _parse_json(stdin: bytes | str) -> dict[str, Any]:
    try:
        doc = json.loads(stdin)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CniError(ERR_DECODE, "network configuration on stdin is not valid JSON", str(e)) from None
    if not isinstance(doc, dict):
        raise CniError(ERR_INVALID_NETCONF, "network configuration must be a JSON object",
                       f"got {type(doc).__name__}")
    return doc


def _want(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str,
          required: bool = False) -> Any:
    if key not in doc:
        if required:
            raise CniError(ERR_INVALID_NETCONF, f"network configuration has no {key!r}")
        return None
    value = doc[key]
    # bool is an int in Python, never in JSON's sense of a number.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise CniError(ERR_INVALID_NETCONF, f"network configuration key {key!r} must be {what}",
                       f"got {json.dumps(value)}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _parse_netconf(raw: bytes, doc: dict[str, Any], command: str) -> NetConf:
    version = _want(doc, "cniVersion", str, "a string", required=True)
    if version not in SUPPORTED_VERSIONS:
        raise CniError(ERR_INCOMPATIBLE_VERSION, f"incompatible CNI version {version!r}",
                       f"supported: {', '.join(SUPPORTED_VERSIONS)}")
    _check_command_version(command, version)
    name = _want(doc, "name", str, "a string", required=True)
    if not _NAME_RE.match(name):
        raise CniError(ERR_INVALID_NETCONF, "invalid network name",
                       f"{name!r}: must start with an alphanumeric character and contain only "
                       "alphanumerics, '_', '.' and '-'")
    kind = _want(doc, "type", str, "a string", required=True)
    if not kind:
        raise CniError(ERR_INVALID_NETCONF, "network configuration key 'type' is empty")

    socket = _want(doc, "agentSocket", str, "a string")
    if socket is None:
        socket = DEFAULT_AGENT_SOCKET
    elif not socket.startswith("/"):
        raise CniError(ERR_INVALID_NETCONF, "agentSocket must be an absolute path", repr(socket))
    timeout = _want(doc, "timeoutSeconds", (int, float), "a number")
    if timeout is None:
        timeout = DEFAULT_TIMEOUT_SECONDS
    elif not timeout > 0:
        raise CniError(ERR_INVALID_NETCONF, "timeoutSeconds must be positive", str(timeout))
    mtu = _want(doc, "mtu", int, "an integer")
    if mtu is not None and not 68 <= mtu <= 65535:
        raise CniError(ERR_INVALID_NETCONF, "mtu must be within 68..65535", str(mtu))

    # DEL does not use prevResult, and a bad one must not block the clean-up.
    prev = _want(doc, "prevResult", dict, "an object") if command in ("ADD", "CHECK") else None
    prev_result = None
    if prev is not None:
        try:
            prev_result = to_current(prev)
        except ValueError as e:
            raise CniError(ERR_INVALID_NETCONF, "invalid prevResult", str(e)) from None

    attachments: list[tuple[str, str]] = []
    if command == "GC":
        attachments = _valid_attachments(doc)
    return NetConf(raw=raw, cni_version=version, name=name, type=kind, agent_socket=socket,
                   timeout_seconds=float(timeout), prev_result=prev_result,
                   valid_attachments=attachments)


def _valid_attachments(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    # Absent is not "none are valid": that reading would tear down every pod of the network.
    items = _want(doc, _VALID_ATTACHMENTS_KEY, list, "a list", required=True)
    out = []
    for i, item in enumerate(items):
        if not (isinstance(item, dict) and isinstance(item.get("containerID"), str)
                and isinstance(item.get("ifname"), str)):
            raise CniError(ERR_INVALID_NETCONF, f"invalid entry {i} in {_VALID_ATTACHMENTS_KEY}",
                           'expected {"containerID": string, "ifname": string}, '
                           f"got {json.dumps(item)}")
        out.append((item["containerID"], item["ifname"]))
    return out


def _check_command_version(command: str, version: str) -> None:
    first = {"CHECK": "0.4.0", "STATUS": "1.1.0", "GC": "1.1.0"}.get(command)
    if first and _version_tuple(version) < _version_tuple(first):
        raise CniError(ERR_INCOMPATIBLE_VERSION, f"config version does not allow {command}",
                       f"cniVersion {version}; {command} needs {first} or later")


# ------------------------------------------------------------------- results

def to_current(result: Mapping[str, Any]) -> dict[str, Any]:
    """A 0.3.x/0.4.0/1.x result in the 1.0.0 form (no per-IP version). ValueError if malformed."""
    interfaces = result.get("interfaces", [])
    ips = result.get("ips", [])
    routes = result.get("routes", [])
    dns = result.get("dns", {})
    if not (isinstance(interfaces, list) and all(isinstance(i, dict) for i in interfaces)):
        raise ValueError("'interfaces' must be a list of objects")
    if not (isinstance(ips, list) and all(isinstance(i, dict) for i in ips)):
        raise ValueError("'ips' must be a list of objects")
    if not (isinstance(routes, list) and all(isinstance(r, dict) for r in routes)):
        raise ValueError("'routes' must be a list of objects")
    if not isinstance(dns, dict):
        raise ValueError("'dns' must be an object")
    out_ips = []
    for n, ip in enumerate(ips):
        address = ip.get("address")
        try:
            ipaddress.ip_interface(address)  # type: ignore[arg-type]
        except ValueError:
            raise ValueError(f"ips[{n}].address {address!r} is not an address/prefix") from None
        index = ip.get("interface")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)
                                  or not 0 <= index < len(interfaces)):
            raise ValueError(f"ips[{n}].interface {index!r} is not an index into interfaces")
        out_ips.append({k: v for k, v in ip.items() if k != "version"})
    out: dict[str, Any] = {"cniVersion": "1.0.0", "interfaces": [dict(i) for i in interfaces],
                           "ips": out_ips, "routes": [dict(r) for r in routes]}
    if dns:
        out["dns"] = dict(dns)
    return out


def convert(result: Mapping[str, Any], cni_version: str) -> dict[str, Any]:
    """A 1.0.0-form result as the caller's cniVersion expects it."""
    out = {**result, "cniVersion": cni_version}
    if _version_tuple(cni_version) >= (1, 0, 0):
        return out
    # 0.3.x and 0.4.0 know only these fields, and tag each IP with its family.
    out["interfaces"] = [{k: i[k] for k in ("name", "mac", "sandbox") if k in i}
                         for i in result.get("interfaces", [])]
    out["ips"] = [{"version": str(ipaddress.ip_interface(ip["address"]).version), **ip}
                  for ip in result.get("ips", [])]
    out["routes"] = [{k: r[k] for k in ("dst", "gw") if k in r} for r in result.get("routes", [])]
    return out


def merge(prev: Mapping[str, Any], ours: Mapping[str, Any]) -> dict[str, Any]:
    """Chain our result after a previous plugin's: both in 1.0.0 form."""
    shift = len(prev.get("interfaces", []))
    ips = [dict(ip) for ip in prev.get("ips", [])]
    for ip in ours.get("ips", []):
        ip = dict(ip)
        if "interface" in ip:
            ip["interface"] += shift
        ips.append(ip)
    routes = [dict(r) for r in prev.get("routes", [])]
    routes += [dict(r) for r in ours.get("routes", []) if r not in routes]
    out: dict[str, Any] = {
        "cniVersion": "1.0.0",
        "interfaces": [*prev.get("interfaces", []), *ours.get("interfaces", [])],
        "ips": ips,
        "routes": routes,
    }
    dns_prev, dns_ours = prev.get("dns", {}), ours.get("dns", {})
    dns: dict[str, Any] = {}
    for key in ("nameservers", "search", "options"):
        merged = list(dns_prev.get(key, []))
        merged += [v for v in dns_ours.get(key, []) if v not in merged]
        if merged:
            dns[key] = merged
    domain = dns_ours.get("domain") or dns_prev.get("domain")
    if domain:
        dns["domain"] = domain
    if dns:
        out["dns"] = dns
    return out


# ----------------------------------------------------------------- the agent

class AgentClient:
    """The CniBackend gRPC stub on the agent's unix socket, with CNI-shaped failures."""

    def __init__(self, socket_path: str, timeout_seconds: float, command: str) -> None:
        import grpc  # lazily: VERSION and every validation error answer without it

        from .pb import cni_backend_pb2 as pb
        from .pb import cni_backend_pb2_grpc as pb_grpc

        self._grpc = grpc
        self.pb = pb
        self._socket = socket_path
        self._timeout = timeout_seconds
        self._command = command
        # A runtime's proxy variables must not reroute a local socket.
        self._channel = grpc.insecure_channel(f"unix:{socket_path}",
                                              options=[("grpc.enable_http_proxy", 0)])
        self._stub = pb_grpc.CniBackendStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=self._timeout)
        except self._grpc.RpcError as e:
            raise self._failure(e) from None

    def _failure(self, e: Any) -> CniError:
        status = e.code()
        name = getattr(status, "name", str(status))
        details = f"agent socket {self._socket}: gRPC {name}: {e.details()}"
        if self._command == "STATUS":
            return CniError(ERR_NOT_AVAILABLE, "plugin not available: vppagent is not reachable",
                            details)
        if status == self._grpc.StatusCode.DEADLINE_EXCEEDED:
            return CniError(ERR_AGENT_UNREACHABLE,
                            f"vppagent did not answer: timed out after {self._timeout:g} s", details)
        if status == self._grpc.StatusCode.UNAVAILABLE:
            return CniError(ERR_AGENT_UNREACHABLE, "vppagent unreachable", details)
        if status == self._grpc.StatusCode.RESOURCE_EXHAUSTED:
            # The same request would fail the same way: not the retryable 100.
            return CniError(ERR_INVALID_NETCONF, "the request is larger than vppagent accepts", details)
        return CniError(ERR_AGENT_UNREACHABLE, f"vppagent failed the call ({name})", details)


def _reply_error(reply: Any) -> CniError | None:
    if not reply.HasField("error"):
        return None
    err = reply.error
    if err.code == 0:
        return CniError(ERR_AGENT_BAD_REPLY, "vppagent returned an error without a code",
                        f"msg={err.msg!r} details={err.details!r}")
    return CniError(err.code, err.msg, err.details)


def _run_command(inv: Invocation, conf: NetConf) -> dict[str, Any] | None:
    client = AgentClient(conf.agent_socket, conf.timeout_seconds, inv.command)
    pb = client.pb
    try:
        if inv.command in ("ADD", "DEL", "CHECK"):
            request = pb.CniRequest(container_id=inv.container_id, netns=inv.netns,
                                    ifname=inv.ifname, args=inv.args, config=conf.raw)
            if inv.command == "CHECK" and conf.prev_result is not None:
                request.prev_result = json.dumps(conf.prev_result).encode()
            reply = client.call(inv.command.capitalize(), request)
        elif inv.command == "STATUS":
            reply = client.call("Status", pb.StatusRequest(config=conf.raw))
        else:
            reply = client.call("Gc", pb.GcRequest(
                config=conf.raw,
                valid_attachments=[pb.Attachment(container_id=c, ifname=i)
                                   for c, i in conf.valid_attachments]))
    finally:
        client.close()
    error = _reply_error(reply)
    if error:
        raise error
    if inv.command != "ADD":
        return None
    return _add_result(reply.result, conf)


def _add_result(payload: bytes, conf: NetConf) -> dict[str, Any]:
    if not payload:
        raise CniError(ERR_AGENT_BAD_REPLY, "vppagent returned neither a result nor an error")
    try:
        doc = json.loads(payload)
        if not isinstance(doc, dict):
            raise ValueError(f"result is a {type(doc).__name__}, not an object")
        ours = to_current(doc)
    except ValueError as e:
        raise CniError(ERR_AGENT_BAD_REPLY, "vppagent returned an invalid result", str(e)) from None
    if conf.prev_result is not None:
        ours = merge(conf.prev_result, ours)
    return convert(ours, conf.cni_version)


# ------------------------------------------------------------------ dispatch

def handle(env: Mapping[str, str], stdin: bytes | str) -> Outcome:
    """The exit code and the JSON document to print for one invocation."""
    version = LATEST_VERSION
    try:
        inv = _read_invocation(env)
        if inv.command == "VERSION":
            return Outcome(0, {"cniVersion": LATEST_VERSION, "supportedVersions": SUPPORTED_VERSIONS})
        raw = stdin.encode() if isinstance(stdin, str) else stdin
        if len(raw) > MAX_NETCONF_BYTES:
            raise CniError(ERR_INVALID_NETCONF, "network configuration is too large",
                           f"{len(raw)} bytes on stdin; the limit is {MAX_NETCONF_BYTES}")
        doc = _parse_json(raw)
        if isinstance(doc.get("cniVersion"), str) and doc["cniVersion"] in SUPPORTED_VERSIONS:
            version = doc["cniVersion"]
        conf = _parse_netconf(raw, doc, inv.command)
        _check_environment(inv)
        if inv.command == "CHECK" and conf.prev_result is None:
            raise CniError(ERR_INVALID_NETCONF, "CHECK needs the prevResult of the ADD")
        return Outcome(0, _run_command(inv, conf))
    except CniError as e:
        return Outcome(1, e.document(version))
    except Exception as e:  # noqa: BLE001 - the runtime must get a spec error, never a traceback
        return Outcome(1, CniError(ERR_INTERNAL, "vppagent-cni internal error",
                                   f"{type(e).__name__}: {e}").document(version))


def run(env: Mapping[str, str], stdin: BinaryIO | None, stdout: TextIO) -> int:
    command = env.get("CNI_COMMAND")
    # VERSION ignores its input ({"cniVersion": ...}) but still drains it so the runtime's
    # write never meets a closed pipe; from a terminal it reads nothing.
    skip = stdin is None or (command == "VERSION" and stdin.isatty())
    data = b"" if skip else stdin.read()  # type: ignore[union-attr]
    outcome = handle(env, data)
    if outcome.document is not None:
        stdout.write(json.dumps(outcome.document))
        stdout.write("\n")
    stdout.flush()
    return outcome.exit_code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "install":
        from .install import main as install_main

        return install_main(argv[1:])
    return run(os.environ, sys.stdin.buffer, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
