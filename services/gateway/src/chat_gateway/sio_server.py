"""The Socket.IO server, hardened against frames that are not Socket.IO packets."""

from __future__ import annotations

import logging
from typing import Any

import socketio

from chat_gateway import metrics

log = logging.getLogger(__name__)


class GatewayServer(socketio.AsyncServer):
    """`socketio.AsyncServer` that drops undecodable packets with one warning line.

    A frame that does not decode (bad JSON, JSON nested past the parser's limit,
    an unknown packet type) carries no usable acknowledgement. The library
    raises, and Engine.IO logs an error with a traceback per frame: any client
    could fill the logs that way. The frame is dropped instead and the
    connection stays as it was.
    """

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        # An event packet is a list headed by the event's name. Anything else becomes an
        # unknown event, which the catch-all handler answers (the library would fail,
        # hashing a dict, or indexing an empty list, in a task of its own).
        if not isinstance(data, list) or not data:
            data = ["<malformed>"]
        elif not isinstance(data[0], str):
            data = [f"<{type(data[0]).__name__}>", *data[1:]]
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if not isinstance(data, bytes) and self._binary_packet.pop(eio_sid, None) is not None:
            # Attachments travel as binary frames: a text frame abandons the packet that
            # waited for them and is read as a packet of its own, or a packet announcing
            # attachments that never come would swallow every frame after it.
            _dropped("binary packet without its attachments")
        try:
            await super()._handle_eio_message(eio_sid, data)
        except _UNDECODABLE as exc:
            if isinstance(data, str) and data[:1] == "0" and not isinstance(exc, ValueError):
                raise  # a CONNECT packet ran the connect handler: not about the frame
            # A binary packet whose attachments do not fit is dropped whole, or the
            # frames after it would all be taken for its attachments.
            self._binary_packet.pop(eio_sid, None)
            _dropped(f"{type(exc).__name__}: {exc}")
            return
        pending = self._binary_packet.get(eio_sid)
        if pending is not None and pending.attachment_count > MAX_ATTACHMENTS:
            # Held until complete, attachments would let one client park up to the
            # library's limit of frames in memory.
            del self._binary_packet[eio_sid]
            _dropped(f"binary packet announcing {pending.attachment_count} attachments")


def _dropped(error: str) -> None:
    metrics.ERRORS.labels("(packet)", "validation_error").inc()
    log.warning("malformed packet dropped", extra={"error": error[:200]})


# No client event of the contract carries binary data (those that do are refused as
# invalid): a packet announcing more attachments than this is dropped at once.
MAX_ATTACHMENTS = 8

# What decoding a frame raises: bad JSON (a ValueError), JSON nested too deep, binary
# placeholders that point nowhere.
_UNDECODABLE = (ValueError, RecursionError, IndexError, KeyError, TypeError)
