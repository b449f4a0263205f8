"""Is this VPP (and these API definitions) the one the agent was written for?

Owns: comparing the messages the agent uses, with the CRCs pinned in
``crcs.py`` (VPP 26.06), against the loaded definitions and against VPP's
message table from the handshake. A CRC names a message's exact layout, so a
difference means the agent would send bytes VPP reads differently: refuse to
start and list every difference, never guess.
"""
from __future__ import annotations

from typing import Mapping

from .api_defs import ApiDefinitions
from .crcs import PINNED_CRCS
from .errors import IncompatibleVppError, Mismatch


def check_definitions(defs: ApiDefinitions, required: Mapping[str, str]) -> list[Mismatch]:
    out = []
    for name, crc in sorted(required.items()):
        m = defs.messages.get(name)
        if m is None:
            out.append(Mismatch(name, crc, "missing"))
        elif m.crc != crc:
            out.append(Mismatch(name, crc, m.crc))
    return out


def check_message_table(table: Mapping[str, int], required: Mapping[str, str]) -> list[Mismatch]:
    offered: dict[str, list[str]] = {}
    for name_crc in table:
        name, _, crc = name_crc.rpartition("_")
        offered.setdefault(name, []).append("0x" + crc)
    out = []
    for name, crc in sorted(required.items()):
        if f"{name}_{crc[2:]}" in table:
            continue
        found = offered.get(name)
        out.append(Mismatch(name, crc, ",".join(found) if found else "missing"))
    return out


def check_compatibility(
    defs: ApiDefinitions,
    table: Mapping[str, int],
    required: Mapping[str, str] | None,
    where: str,
) -> None:
    """Raise IncompatibleVppError listing every message that differs."""
    required = PINNED_CRCS if required is None else required
    bad = check_definitions(defs, required)
    if bad:
        raise IncompatibleVppError(bad, where=f"API definitions in {defs.directory}")
    bad = check_message_table(table, required)
    if bad:
        raise IncompatibleVppError(bad, where=f"VPP at {where}")
