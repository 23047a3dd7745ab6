"""The Socket.IO side of a gateway, assembled: which client event goes to which handler.

The parts each have one job: `dispatch` turns events into acknowledgements,
`lifecycle` looks after this instance's sockets, `client_events` does what
each event asks, `typing_signals` handles the ephemeral typing indicator.
"""

from __future__ import annotations

from dataclasses import dataclass

import socketio
from pydantic import BaseModel

from chat_contracts.socket import (
    AuthRefreshPayload,
    CursorPayload,
    PresenceQueryPayload,
    SendMessagePayload,
    SyncPayload,
    TypingPayload,
)
from chat_gateway.client_events import ClientEvents
from chat_gateway.connections import LocalConnections
from chat_gateway.dispatch import Dispatcher, Handler, Lane
from chat_gateway.lifecycle import Lifecycle
from chat_gateway.presence import Presence
from chat_gateway.settings import GatewaySettings
from chat_gateway.typing_signals import TypingSignals
from chat_platform.amqp import Broker, CommandClient
from chat_platform.jwt import TokenVerifier
from chat_platform.ratelimit import Budgets, TokenBuckets


@dataclass(frozen=True)
class Realtime:
    connections: LocalConnections
    dispatcher: Dispatcher
    lifecycle: Lifecycle
    events: ClientEvents
    typing: TypingSignals
    sends: Lane

    @classmethod
    def build(
        cls,
        settings: GatewaySettings,
        sio: socketio.AsyncServer,
        *,
        verifier: TokenVerifier,
        commands: CommandClient,
        broker: Broker,
        presence: Presence,
        buckets: TokenBuckets,
    ) -> Realtime:
        s = settings
        connections = LocalConnections()
        dispatcher = Dispatcher(
            connections,
            Budgets(buckets, s.budget_rates(), s.rate_other),
            max_event_bytes=s.max_event_bytes,
        )
        typing = TypingSignals(
            sio,
            commands,
            timeout_seconds=s.typing_timeout_seconds,
            max_in_flight=s.ephemeral_inflight_max,
        )
        lifecycle = Lifecycle(
            sio,
            connections,
            dispatcher,
            verifier,
            presence,
            broker,
            typing,
            token_grace_seconds=s.token_grace_seconds,
        )
        events = ClientEvents(
            commands,
            presence,
            verifier,
            typing,
            command_timeout=s.command_timeout_seconds,
            send_timeout=s.send_timeout_seconds,
        )
        sends = Lane(per_socket=s.max_sends_per_socket, total=s.max_sends_in_flight)
        return cls(connections, dispatcher, lifecycle, events, typing, sends)

    def register(self, sio: socketio.AsyncServer) -> None:
        sio.on("connect", self.lifecycle.on_connect)
        sio.on("disconnect", self.lifecycle.on_disconnect)
        handlers: dict[str, tuple[type[BaseModel], Handler]] = {
            "message:send": (SendMessagePayload, self.events.send_message),
            "message:delivered": (CursorPayload, self.events.delivered),
            "conversation:read": (CursorPayload, self.events.read),
            "typing": (TypingPayload, self.typing.typing),
            "sync": (SyncPayload, self.events.sync),
            "presence:query": (PresenceQueryPayload, self.events.presence_query),
            "auth:refresh": (AuthRefreshPayload, self.events.auth_refresh),
        }
        for name, (model, handler) in handlers.items():
            lane = self.sends if name == "message:send" else None
            sio.on(name, self.dispatcher.event(name, model, handler, lane=lane))
        sio.on("*", self.dispatcher.unknown)
