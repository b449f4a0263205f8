"""Expedited RCU grace periods while the agent serves pods (config ``kernel_rcu_expedited``).

Every packet socket VPP opens or closes for a pod waits for RCU grace periods in
the kernel (``synchronize_net`` in bind and in each ring's setup and teardown),
as does every network device deleted. A normal grace period took 8-15 ms on the
machines we measured, and an af_packet create or delete waits for three or four
of them: 30-40 ms, most of a pod ADD. Expedited grace periods end in tens of
microseconds (af_packet create 33 -> 2.8 ms, delete 39 -> 3.1 ms in
``perf/afpacket_scale.py``), at the price of an inter-processor interrupt to
every busy CPU per grace period.

The setting is the kernel's, for the whole node: the agent records what it found
and puts it back on a clean stop. Where /sys is read-only (an unprivileged
container), pods are still served, only slower; a warning says so.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PATH = Path("/sys/kernel/rcu_expedited")


@dataclass
class RcuExpedited:
    path: Path = PATH
    _restore_to: str | None = field(default=None, init=False)

    def enable(self) -> bool:
        """Turn expedited grace periods on; whether they are on now."""
        try:
            before = self.path.read_text().strip()
            if before != "0":
                return True  # on already (another agent, the boot command line, the operator): not ours
            self.path.write_text("1\n")
        except OSError as e:
            log.warning("cannot expedite RCU grace periods; pod ADD and DEL stay slower",
                        extra={"path": str(self.path), "error": str(e)})
            return False
        self._restore_to = before
        log.info("RCU grace periods expedited while pods are served", extra={"path": str(self.path),
                                                                            "was": before})
        return True

    def restore(self) -> None:
        """Put back what ``enable`` found, if it changed it."""
        if self._restore_to is None:
            return
        try:
            self.path.write_text(self._restore_to + "\n")
            log.info("RCU grace periods back to normal", extra={"path": str(self.path)})
        except OSError as e:
            log.warning("cannot restore the RCU setting", extra={"path": str(self.path), "error": str(e)})
        self._restore_to = None


__all__ = ["PATH", "RcuExpedited"]
