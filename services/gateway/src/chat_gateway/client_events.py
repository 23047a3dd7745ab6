"""What each client event does once parsed and budgeted: mostly a command to the message service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chat_contracts.commands import CursorKind, MoveCursor, SendMessage, Sync, VisiblePresence
from chat_contracts.errors import ApiError, ErrorCode
from chat_contracts.socket import (
    AuthRefreshPayload,
    CursorPayload,
    PresenceQueryPayload,
    SendMessagePayload,
    SyncPayload,
)
from chat_gateway import metrics
from chat_gateway.connections import Connection
from chat_gateway.presence import Presence
from chat_gateway.typing_signals import TypingSignals
from chat_platform.amqp import CommandClient
from chat_platform.jwt import TokenError, TokenVerifier


@dataclass
class ClientEvents:
    commands: CommandClient
    presence: Presence
    verifier: TokenVerifier
    typing: TypingSignals
    command_timeout: float
    # A send not answered by then is answered `timeout` (retry with the same client_msg_id).
    send_timeout: float

    async def send_message(self, c: Connection, p: SendMessagePayload) -> dict[str, Any]:
        sent = await self.commands.call(
            SendMessage(sender_id=c.user_id, request=p), timeout=self.send_timeout
        )
        self.typing.sent(c, p.conversation_id)
        return {"message": sent.message.model_dump(mode="json")}

    async def delivered(self, c: Connection, p: CursorPayload) -> None:
        await self._move_cursor(c, p, "delivered")

    async def read(self, c: Connection, p: CursorPayload) -> None:
        await self._move_cursor(c, p, "read")

    async def _move_cursor(self, c: Connection, p: CursorPayload, kind: CursorKind) -> None:
        move = MoveCursor(
            user_id=c.user_id, conversation_id=p.conversation_id, seq=p.seq, kind=kind
        )
        await self.commands.call(move, timeout=self.command_timeout)

    async def sync(self, c: Connection, p: SyncPayload) -> dict[str, Any]:
        result = await self.commands.call(
            Sync(user_id=c.user_id, request=p), timeout=self.command_timeout
        )
        metrics.SYNC_REQUESTS.inc()
        metrics.SYNC_MESSAGES.observe(sum(len(x.messages) for x in result.conversations))
        return result.model_dump(mode="json")

    async def presence_query(self, c: Connection, p: PresenceQueryPayload) -> dict[str, Any]:
        asked = [u for u in dict.fromkeys(p.user_ids) if u != c.user_id]
        allowed = {c.user_id}
        if asked:
            # The subjects' settings and blocks decide, as the message service knows them.
            visible = await self.commands.call(
                VisiblePresence(viewer_id=c.user_id, user_ids=asked), timeout=self.command_timeout
            )
            allowed.update(visible.user_ids)
        shown = [u for u in dict.fromkeys(p.user_ids) if u in allowed]
        states = await self.presence.states(shown) if shown else {}
        presence = {}
        for user_id in p.user_ids:
            state = states.get(user_id)
            presence[user_id] = {
                # Users whose presence the caller may not see look offline, never seen.
                "online": bool(state and state.online),
                "last_seen": state.last_seen.isoformat() if state and state.last_seen else None,
            }
        return {"presence": presence}

    async def auth_refresh(self, c: Connection, p: AuthRefreshPayload) -> None:
        try:
            claims = await self.verifier.verify(p.token)
        except TokenError as exc:
            raise ApiError(ErrorCode.UNAUTHORIZED, f"Access token rejected: {exc}.") from None
        if claims.sub != c.user_id:
            raise ApiError(ErrorCode.FORBIDDEN, "The token belongs to another user.")
        c.token_expires_at = float(claims.exp)
