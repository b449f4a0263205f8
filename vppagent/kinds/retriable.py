"""Which errors are worth retrying with the same value.

Owns the default answer descriptors give to ``is_retriable``: an error whose
cause is the value itself (VPP says the argument is invalid, or the value
cannot even be encoded) will fail the same way again, so it waits for a new
value; anything else (a missing table or interface that may appear, VPP
busy, an unknown error) is retried with backoff. Must not touch: retry
timing (the engine's ``RetryPolicy``).
"""
from __future__ import annotations

from vppagent.vpp.errors import VppApiError, VppError
from vppagent.vpp.retvals import Retval

# VPP's verdicts on the request itself: retrying the same bytes cannot help.
VALUE_REJECTED = frozenset({
    Retval.INVALID_VALUE, Retval.INVALID_VALUE_2, Retval.INVALID_ARGUMENT,
    Retval.INVALID_ADDRESS_FAMILY, Retval.IP_PREFIX_INVALID, Retval.INVALID_PREFIX_LENGTH,
    Retval.UNSUPPORTED, Retval.UNIMPLEMENTED, Retval.INVALID_PROTOCOL, Retval.NO_PATHS_IN_ROUTE,
    Retval.ADDRESS_LENGTH_MISMATCH,
})


def default_is_retriable(error: Exception) -> bool:
    if isinstance(error, VppApiError):
        return error.retval not in VALUE_REJECTED
    # Other VPP-layer errors (not a verdict on the value) may pass later;
    # anything else (ValueError, TypeError while encoding) is the value's fault.
    return isinstance(error, VppError)
