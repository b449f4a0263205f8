"""What the agent attached to a pod: one record per (container, ifname).

Owns: the ``Attachment`` value the CNI backend stores after an ADD and reads
back for DEL, CHECK, GC and restart recovery, and its JSON form. Pure data:
no I/O, no logging.
"""
from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, fields
from enum import Enum
from typing import Any


class Driver(str, Enum):
    TUN = "tun"
    VETH = "veth"
    MEMIF = "memif"


class InvalidAttachment(ValueError):
    """A stored attachment record that cannot be read back."""

    def __init__(self, reason: str, record: Any = None):
        super().__init__(f"invalid attachment record: {reason}")
        self.reason = reason
        self.record = record


MEMIF_IP_PREFIX = "memif:"

_STR_FIELDS = ("container_id", "ifname", "netns", "pod_namespace", "pod_name", "pod_uid",
               "host_ifname", "pod_mac", "vpp_mac", "memif_socket", "netns_id")


@dataclass(frozen=True)
class Attachment:
    container_id: str
    ifname: str
    netns: str                 # netns path exactly as the CNI runtime gave it
    pod_namespace: str
    pod_name: str
    pod_uid: str
    driver: Driver
    host_ifname: str           # veth host end (af_packet) or tun name; "" for memif
    ips: tuple[str, ...]       # ip_interface strings as given to the pod, e.g. "10.244.1.5/32";
                               # "memif:"-prefixed for the memif interface's addresses
    pod_mac: str
    vpp_mac: str
    mtu: int
    memif_socket: str = ""     # memif only
    # The netns's identity ("st_dev:st_ino") at ADD. A path like /proc/PID/ns/net
    # may later name another process's namespace (PIDs are reused): DEL enters
    # the path only while the identity still matches.
    netns_id: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.container_id, self.ifname)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["driver"] = self.driver.value
        d["ips"] = list(self.ips)
        return d

    @classmethod
    def from_json(cls, d: Any) -> "Attachment":
        if not isinstance(d, dict):
            raise InvalidAttachment(f"expected an object, got {type(d).__name__}", d)
        names = {f.name for f in fields(cls)}
        required = names - {"memif_socket", "netns_id"}
        missing = sorted(required - d.keys())
        if missing:
            raise InvalidAttachment(f"missing fields {missing}", d)
        # Unknown keys are ignored so that a newer agent's records stay readable.
        kw = {k: d[k] for k in names if k in d}
        for k in _STR_FIELDS:
            if k in kw and not isinstance(kw[k], str):
                raise InvalidAttachment(f"{k} must be a string, got {kw[k]!r}", d)
        if not kw["container_id"] or not kw["ifname"]:
            raise InvalidAttachment("container_id and ifname must not be empty", d)
        try:
            kw["driver"] = Driver(kw["driver"])
        except ValueError:
            raise InvalidAttachment(f"unknown driver {kw['driver']!r}", d) from None
        ips = kw["ips"]
        if not isinstance(ips, (list, tuple)) or not all(isinstance(i, str) for i in ips):
            raise InvalidAttachment(f"ips must be a list of strings, got {ips!r}", d)
        for ip in ips:
            try:
                # The CNI backend marks the memif interface's addresses "memif:<ip>/<len>".
                ipaddress.ip_interface(ip.removeprefix(MEMIF_IP_PREFIX))
            except ValueError:
                raise InvalidAttachment(f"ips: {ip!r} is not an address/prefix", d) from None
        kw["ips"] = tuple(ips)
        if not isinstance(kw["mtu"], int) or isinstance(kw["mtu"], bool) or kw["mtu"] <= 0:
            raise InvalidAttachment(f"mtu must be a positive integer, got {kw['mtu']!r}", d)
        return cls(**kw)
