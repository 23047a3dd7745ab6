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
        try:
            await super()._handle_eio_message(eio_sid, data)
        except _UNDECODABLE as exc:
            if isinstance(data, str) and data[:1] == "0" and not isinstance(exc, ValueError):
                raise  # a CONNECT packet ran the connect handler: not about the frame
            # A binary packet whose attachments do not fit is dropped whole, or the
            # frames after it would all be taken for its attachments.
            self._binary_packet.pop(eio_sid, None)
            metrics.ERRORS.labels("(packet)", "validation_error").inc()
            log.warning(
                "malformed packet dropped",
                extra={"error": f"{type(exc).__name__}: {exc}"[:200]},
            )


# What decoding a frame raises: bad JSON (a ValueError), JSON nested too deep, binary
# placeholders that point nowhere.
_UNDECODABLE = (ValueError, RecursionError, IndexError, KeyError, TypeError)
