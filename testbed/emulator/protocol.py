"""One request in, VPP's answer out: decoding, handler dispatch, reply encoding.

Owns the message-level rules of VPP's API (vlibapi/api_shared.c,
vlibmemory/socket_api.c, api_helper_macros.h):

- a message ID that is not in the table, or that is not a request (a reply
  or event sent to VPP), is dropped and logged, as VPP's "no handler";
- replies go to the registration named by the request's ``client_index``
  (a socket client's handle has bit 31 set), not to the socket the request
  came on; a request with an unknown ``client_index`` is executed but its
  reply dropped, exactly as REPLY_MACRO does (so a pipelining client must
  fill in the index sockclnt_create gave it). Only ``sockclnt_create``
  answers the socket it came on;
- a reply echoes the request's ``context``;
- old-style dumps answer with details only (the client's control_ping ends
  them); new-style streams with details then the reply;
- a failing handler answers the reply message with the retval and every
  other field zero; a failing old-style dump answers nothing (details have
  no retval; VPP's dumps answer nothing on a bad index either), nor does a
  request whose reply has no status field (a zeroed reply would pass for
  success);
- a request the emulator does not implement is answered with retval
  UNIMPLEMENTED (-9) and logged - never a silent success.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from typing import Protocol as TypingProtocol

from vppagent.vpp.retvals import Retval, retval_name

from .apidefs import REQUEST_HEADER, U16, ApiDefinitions, MessageDef, Service
from .handlers import Dispatch
from .registry import VppRetval

if TYPE_CHECKING:
    from .server import Emulator

log = logging.getLogger(__name__)

SOCKET_HANDLE_BIT = 1 << 31
# Answered on the socket the request came on: the client has no index yet.
_REPLY_TO_SENDER = frozenset({"sockclnt_create"})


class Connection(TypingProtocol):
    """What the protocol needs of a client connection (server's ``_Conn``)."""

    reg_index: int
    closing: bool

    @property
    def client_index(self) -> int: ...


class Transport(TypingProtocol):
    def registration(self, client_index: int) -> Connection | None: ...

    def deliver(self, conn: Connection, payloads: list[bytes]) -> None: ...


@dataclass
class Session:
    """The client a handler is answering (``emu.session`` during a call)."""

    client_index: int
    connection: Any  # the server's connection object of the sender
    transport: Any

    def delete_registration(self, handle: int) -> bool:
        """Close the registration with this handle after the reply; False if unknown."""
        conn = self.transport.registration(handle)
        if conn is None:
            return False
        conn.closing = True
        return True


class ApiProtocol:
    def __init__(self, emu: "Emulator", api: ApiDefinitions, dispatch: Dispatch):
        self._emu = emu
        self._api = api
        self._dispatch = dispatch
        self._by_id = api.by_id

    def handle(self, conn: Connection, transport: Transport, data: bytes) -> None:
        """Process one request frame from ``conn``; queue VPP's answer."""
        if len(data) < 2:
            log.warning("runt message dropped", extra={"length": len(data)})
            return
        msg_id = U16.unpack_from(data)[0]
        mdef = self._by_id[msg_id] if msg_id < len(self._by_id) else None
        if mdef is None:
            log.warning("no handler for message id; dropped", extra={"msg_id": msg_id})
            return
        svc = self._api.services.get(mdef.name)
        if svc is None:
            # A reply or event sent to VPP (e.g. memclnt_keepalive_reply).
            log.debug("not a request; dropped", extra={"api_message": mdef.name})
            return
        try:
            req = self._decode(mdef, data)
        except Exception as e:  # vpp_papi refuses what it cannot convert
            self._undecodable(conn, transport, mdef, svc, data, e)
            return
        client_index = getattr(req, "client_index", 0)
        context = getattr(req, "context", 0)
        session = Session(client_index, conn, transport)
        answers = self._run(mdef.name, svc, req, session)
        self._send(conn, transport, mdef.name, client_index, context, answers)

    # -- decoding -----------------------------------------------------------

    @staticmethod
    def _decode(mdef: MessageDef, data: bytes) -> Any:
        if mdef.header_only and len(data) >= REQUEST_HEADER.size:
            return mdef.codec.tuple._make(REQUEST_HEADER.unpack_from(data))
        return mdef.decode(data)

    def _undecodable(self, conn: Connection, transport: Transport, mdef: MessageDef,
                     svc: Service, data: bytes, error: Exception) -> None:
        retval = self._dispatch.decode_errors.get(mdef.name, Retval.INVALID_ARGUMENT)
        log.info("request could not be decoded; answering %s", retval_name(retval),
                 extra={"api_message": mdef.name, "error": str(error)})
        if len(data) < REQUEST_HEADER.size:
            return
        _, client_index, context = REQUEST_HEADER.unpack_from(data)
        self._send(conn, transport, mdef.name, client_index, context, self._failure(svc, retval))

    # -- running the handler -------------------------------------------------

    def _run(self, name: str, svc: Service, req: Any, session: Session) -> list[tuple[str, dict]]:
        handler = self._dispatch.handlers.get(name)
        if handler is None:
            log.warning("emulator does not implement this message; answering UNIMPLEMENTED",
                        extra={"api_message": name})
            return self._failure(svc, Retval.UNIMPLEMENTED)
        emu = self._emu
        emu.session = session
        try:
            result = handler(emu, req)
            return self._shape(name, svc, result)
        except VppRetval as e:
            log.info("request refused: %s", e, extra={"api_message": name, "retval": e.retval})
            return self._failure(svc, e.retval)
        except Exception as e:
            # An emulator bug, not VPP behaviour: make it loud and visible to tests.
            log.exception("handler failed", extra={"api_message": name})
            emu.handler_errors.append((name, e))
            return self._failure(svc, Retval.UNSPECIFIED)
        finally:
            emu.session = None

    def _shape(self, name: str, svc: Service, result: Any) -> list[tuple[str, dict]]:
        if svc.reply is None:
            return []
        if svc.kind == "single":
            return [(svc.reply, dict(result or {}))]
        if svc.kind == "dump":
            return [(svc.reply, d) for d in (result or [])]
        reply, details = result
        out = [(svc.details or "", d) for d in details]
        out.append((svc.reply, dict(reply or {})))
        return out

    def _failure(self, svc: Service, retval: int) -> list[tuple[str, dict]]:
        if svc.reply is None or svc.kind == "dump":
            return []
        fields = self._api.by_name[svc.reply].fields
        for status in ("retval", "response"):
            if status in fields:
                return [(svc.reply, {status: int(retval)})]
        # A reply with no status field cannot say it failed; a zeroed one would
        # be a silent success. Say nothing: the client times out, visibly.
        log.warning("reply has no status field; failure answered with silence",
                    extra={"api_message": svc.request, "retval": int(retval)})
        return []

    # -- encoding and delivery ----------------------------------------------

    def _send(self, conn: Connection, transport: Transport, name: str, client_index: int,
              context: int, answers: list[tuple[str, dict]]) -> None:
        if not answers:
            return
        payloads = []
        for msg_name, fields in answers:
            mdef = self._api.by_name[msg_name]
            extra = fields.keys() - mdef.fields
            if extra:
                err = ValueError(f"{msg_name} has no fields {sorted(extra)}")
                log.error("handler returned unknown fields", extra={"api_message": name})
                self._emu.handler_errors.append((name, err))
                for key in extra:
                    del fields[key]
            fields["_vl_msg_id"] = mdef.id
            if "context" in mdef.fields:
                fields["context"] = context
            try:
                payloads.append(mdef.pack(fields))
            except Exception as e:
                log.exception("reply could not be packed", extra={"api_message": msg_name})
                self._emu.handler_errors.append((name, e))
                return
        target = conn if name in _REPLY_TO_SENDER else transport.registration(client_index)
        if target is None:
            log.warning("no client with this client_index; reply dropped as VPP drops it",
                        extra={"api_message": name, "client_index": client_index})
            return
        transport.deliver(target, payloads)
