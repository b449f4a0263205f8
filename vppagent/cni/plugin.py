"""``vppagent-cni``: the CNI plugin executable the container runtime calls.

Owns the CNI side of the contract: reading CNI_COMMAND and the netconf on
stdin, and answering on stdout as the CNI 1.0.0 spec says. VERSION is
complete. ADD, DEL, CHECK, STATUS and GC need the agent's gRPC backend,
which this build does not have yet: they answer a spec-formed error with a
plugin-specific code, so a runtime reports a clear reason instead of a crash.
"""
from __future__ import annotations

import json
import os
import sys
from typing import TextIO

SPEC_VERSION = "1.0.0"
SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]

# CNI reserves 0-99; 100 and up are the plugin's own.
ERR_INVALID_ENV = 4
ERR_DECODE = 6
ERR_NOT_IMPLEMENTED = 100


def _error(code: int, msg: str, details: str = "") -> dict:
    return {"cniVersion": SPEC_VERSION, "code": code, "msg": msg, "details": details}


def handle(command: str | None, stdin: str) -> tuple[int, dict]:
    """The exit code and the JSON document to print for one invocation."""
    if not command:
        return 1, _error(ERR_INVALID_ENV, "CNI_COMMAND is not set")
    if command == "VERSION":
        return 0, {"cniVersion": SPEC_VERSION, "supportedVersions": SUPPORTED_VERSIONS}
    if command not in ("ADD", "DEL", "CHECK", "STATUS", "GC"):
        return 1, _error(ERR_INVALID_ENV, f"unknown CNI_COMMAND {command!r}")
    try:
        json.loads(stdin or "{}")
    except json.JSONDecodeError as e:
        return 1, _error(ERR_DECODE, "network configuration on stdin is not valid JSON", str(e))
    return 1, _error(ERR_NOT_IMPLEMENTED, f"{command} is not implemented by this vppagent build",
                     "pod networking through the agent's gRPC backend is not available yet")


def main(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    command = os.environ.get("CNI_COMMAND")
    data = "" if command == "VERSION" else stdin.read()
    code, doc = handle(command, data)
    json.dump(doc, stdout)
    stdout.write("\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
