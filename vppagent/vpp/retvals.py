"""VPP API return values the agent meets, by number and by VPP's symbolic name.

The numbers are VPP's API contract (vnet error codes); only the ones that the
agent or the emulator produce or handle are listed. Unknown numbers are shown
as ``VPP_ERROR_<n>`` so that nothing is ever hidden.
"""
from __future__ import annotations

from enum import IntEnum


class Retval(IntEnum):
    OK = 0
    UNSPECIFIED = -1
    INVALID_SW_IF_INDEX = -2
    NO_SUCH_FIB = -3
    NO_SUCH_ENTRY = -6
    INVALID_VALUE = -7
    INVALID_VALUE_2 = -8
    UNIMPLEMENTED = -9
    INVALID_SW_IF_INDEX_2 = -10
    SYSCALL_ERROR_1 = -11
    SYSCALL_ERROR_2 = -12
    SYSCALL_ERROR_3 = -13
    FEATURE_DISABLED = -30
    INVALID_REGISTRATION = -31
    NEXT_HOP_NOT_IN_FIB = -50
    NO_PATHS_IN_ROUTE = -52
    NO_MATCHING_INTERFACE = -54
    INVALID_SRC_ADDRESS = -57
    INVALID_DST_ADDRESS = -58
    ADDRESS_LENGTH_MISMATCH = -59
    ADDRESS_NOT_FOUND_FOR_INTERFACE = -60
    ADDRESS_NOT_DELETABLE = -61
    IP6_NOT_ENABLED = -62
    NO_SUCH_TABLE = -65
    SUBIF_ALREADY_EXISTS = -68
    INVALID_INTERFACE = -71
    INVALID_ARGUMENT = -73
    UNEXPECTED_INTF_STATE = -74
    TUNNEL_EXIST = -75
    INVALID_DECAP_NEXT = -76
    IF_ALREADY_EXISTS = -79
    VALUE_EXIST = -81
    SAME_SRC_DST = -82
    IP_PREFIX_INVALID = -88
    INVALID_ADDRESS_FAMILY = -97
    CANNOT_ENABLE_DISABLE_FEATURE = -100
    ADDRESS_IN_USE = -105
    ADDRESS_FOUND_FOR_INTERFACE = -114
    ENTRY_ALREADY_EXISTS = -116
    UNSUPPORTED = -126
    DUPLICATE_IF_ADDRESS = -127
    ACL_IN_USE_INBOUND = -142
    ACL_IN_USE_OUTBOUND = -143
    INIT_FAILED = -144
    NETLINK_ERROR = -145
    INSTANCE_IN_USE = -147
    INVALID_PROTOCOL = -153
    INVALID_ALGORITHM = -154
    RSRC_IN_USE = -155
    KEY_LENGTH = -156
    NO_CHANGE = -160
    LIMIT_EXCEEDED = -162
    UDP_PORT_TAKEN = -164
    EAGAIN = -165
    FEATURE_ALREADY_DISABLED = -169
    FEATURE_ALREADY_ENABLED = -170
    INVALID_PREFIX_LENGTH = -171


def retval_name(retval: int) -> str:
    try:
        return Retval(retval).name
    except ValueError:
        return f"VPP_ERROR_{retval}"
