"""How emulator handlers plug in: one HandlerTable per API family.

A handler receives the emulator (its state) and the decoded request (the
vpp_papi namedtuple) and returns what VPP would answer:

- a plain request: a dict of reply fields (``retval`` defaults to 0);
- an old-style dump (service reply is ``*_details``): a list of details dicts;
- a new-style stream (service has ``stream_msg``): ``(reply_dict, [details...])``.

To fail the way VPP fails, raise :class:`VppRetval` with VPP's retval; the
server turns it into the reply message with that retval (and zeroed fields).

Family state lives in a dataclass of the family's own module, fetched with
``emu.state(MyFamilyState)``; a simulated VPP restart drops all of it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from vppagent.vpp.retvals import Retval


class VppRetval(Exception):
    """Raised by a handler to answer with a non-zero retval, as VPP would."""

    def __init__(self, retval: int, why: str = ""):
        self.retval = int(retval)
        self.why = why
        name = Retval(retval).name if retval in Retval._value2member_map_ else str(retval)
        super().__init__(f"{name}: {why}" if why else name)


Handler = Callable[[Any, Any], Any]


@dataclass
class HandlerTable:
    """The handlers of one API family, keyed by request message name."""

    family: str
    handlers: dict[str, Handler] = field(default_factory=dict)

    def handler(self, *names: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            for name in names:
                if name in self.handlers:
                    raise ValueError(f"{self.family}: two handlers for {name}")
                self.handlers[name] = fn
            return fn

        return register
