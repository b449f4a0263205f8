"""Typed errors of the VPP layer.

Every error names what failed (the message, the socket, the directory) and what
VPP said, so that a caller can log it or turn it into one clear line for an
operator without reading a traceback.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .retvals import retval_name


class VppError(Exception):
    """Base of every error raised by vppagent.vpp."""


class ApiDefinitionsError(VppError):
    """The API definition directory is missing, empty or unreadable."""


class VppConnectError(VppError):
    """The API socket could not be reached (missing path, VPP not running, refused)."""


@dataclass(frozen=True)
class Mismatch:
    """One message the agent needs that VPP does not offer as expected."""

    message: str
    expected_crc: str
    found: str  # "missing" or the CRC(s) VPP offers under that name

    def __str__(self) -> str:
        return f"{self.message}: expected crc {self.expected_crc}, VPP has {self.found}"


class IncompatibleVppError(VppError):
    """VPP's message table lacks messages the agent uses, or has other CRCs."""

    def __init__(self, mismatches: list[Mismatch], where: str = "VPP"):
        self.mismatches = mismatches
        self.where = where
        listed = "; ".join(str(m) for m in mismatches[:8])
        more = f" (and {len(mismatches) - 8} more)" if len(mismatches) > 8 else ""
        super().__init__(
            f"{where} is not compatible with this agent: {len(mismatches)} message(s) "
            f"differ: {listed}{more}"
        )


class VppDisconnectedError(VppError):
    """The connection to VPP dropped (VPP exited or restarted)."""


class VppTimeoutError(VppError):
    """VPP did not answer a request in time."""

    def __init__(self, message: str, timeout: float):
        self.message = message
        self.timeout = timeout
        super().__init__(f"{message}: no reply from VPP within {timeout:g}s")


@dataclass
class VppApiError(VppError):
    """VPP answered a request with a non-zero retval."""

    message: str
    retval: int
    context: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    @property
    def error_name(self) -> str:
        return retval_name(self.retval)

    def __str__(self) -> str:
        ctx = "".join(f" {k}={v}" for k, v in self.context.items())
        return f"{self.message} failed: retval {self.retval} ({self.error_name}){ctx}"

    def __reduce__(self):  # keep pickling (multiprocessing, logging) working
        return (VppApiError, (self.message, self.retval, self.context))


@dataclass
class VppApiItemError(VppApiError):
    """VPP refused a message that carries a list, at one item: ``failed_at`` is its index
    (-1: the message as a whole). Our plugins report it (kpol members, ksvc backends)."""

    failed_at: int = -1

    def __reduce__(self):
        return (type(self), (self.message, self.retval, self.context, self.failed_at))
