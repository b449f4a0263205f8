"""Loading VPP's API definitions (the ``*.api.json`` files) for the client.

Owns: finding the definition directory (configured, else VPP's installed
``/usr/share/vpp/api``), parsing it with vpp_papi's own serializer, and the
lookup tables the client needs (message by name, service of a request).
Also owns the definitions of our own VPP plugins (``plugin_api/``, generated
by VPP's vppapigen from ``vpp_plugins/*/*.api``): they are loaded in addition
to the directory's, unless the directory already holds a file of that name
(an installed plugin's own definitions win). Whether the running VPP offers
those messages is asked per message (``VppClient.has_message``).
Must not: talk to VPP. Checking the definitions against a running VPP is
``compat``'s job.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpp_papi.vpp_papi import VPPApiJSONFiles

from .errors import ApiDefinitionsError

log = logging.getLogger(__name__)

INSTALLED_API_DIR = Path("/usr/share/vpp/api")
PLUGIN_API_DIR = Path(__file__).with_name("plugin_api")


@dataclass(frozen=True)
class Service:
    """How VPP answers a request: one reply, or a stream of details."""

    request: str
    reply: str
    # "single": one reply; "dump": details ended by a control_ping_reply that
    # the client asks for; "stream": details ended by the reply message.
    kind: str
    details: str | None = None


@dataclass(frozen=True)
class ApiDefinitions:
    directory: Path
    messages: dict[str, Any]  # name -> vpp_papi VPPMessage
    services: dict[str, Service]

    def crc(self, name: str) -> str:
        return self.messages[name].crc

    def message(self, name: str) -> Any:
        try:
            return self.messages[name]
        except KeyError:
            raise ApiDefinitionsError(
                f"message {name!r} is not defined in {self.directory}"
            ) from None

    def service(self, request: str) -> Service:
        try:
            return self.services[request]
        except KeyError:
            raise ApiDefinitionsError(
                f"{request!r} is not a request message in {self.directory}"
            ) from None


def resolve_api_dir(configured: str | os.PathLike | None) -> Path:
    """The directory to read definitions from: the configured one, else VPP's."""
    if configured:
        path = Path(configured)
        if not path.is_dir():
            raise ApiDefinitionsError(f"API definition directory {path} does not exist")
        return path
    if INSTALLED_API_DIR.is_dir():
        return INSTALLED_API_DIR
    raise ApiDefinitionsError(
        f"no API definition directory configured and VPP's {INSTALLED_API_DIR} "
        "does not exist (set api_dir / VPPAGENT_API_DIR)"
    )


def _services(raw: dict[str, dict]) -> dict[str, Service]:
    out: dict[str, Service] = {}
    for request, svc in raw.items():
        reply = svc.get("reply")
        if not reply or reply == "null":
            continue  # events and one-way messages: nothing to wait for
        if "stream_msg" in svc:
            out[request] = Service(request, reply, "stream", svc["stream_msg"])
        elif svc.get("stream"):
            out[request] = Service(request, "control_ping_reply", "dump", reply)
        else:
            out[request] = Service(request, reply, "single")
    return out


def plugin_api_files(present: set[str] | frozenset[str] = frozenset()) -> list[Path]:
    """Our plugins' definition files whose names are not in ``present``."""
    return [f for f in sorted(PLUGIN_API_DIR.glob("*.api.json")) if f.name not in present]


def load_definitions(api_dir: str | os.PathLike | None = None, *, plugins: bool = True) -> ApiDefinitions:
    directory = resolve_api_dir(api_dir)
    files = sorted(directory.rglob("*.api.json"))
    if not files:
        raise ApiDefinitionsError(f"no *.api.json files in {directory}")
    if plugins:
        files += plugin_api_files({f.name for f in files})
    try:
        _, messages, services = VPPApiJSONFiles.load_api(apifiles=[str(f) for f in files])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ApiDefinitionsError(f"cannot parse API definitions in {directory}: {e}") from e
    except Exception as e:  # vpp_papi raises its own untyped errors on bad JSON
        raise ApiDefinitionsError(f"cannot parse API definitions in {directory}: {e}") from e
    if "control_ping" not in messages or "sockclnt_create" not in messages:
        raise ApiDefinitionsError(
            f"{directory} lacks memclnt.api.json/vpe definitions (no control_ping)"
        )
    log.debug("loaded API definitions", extra={"dir": str(directory), "files": len(files)})
    return ApiDefinitions(directory, messages, _services(services))
