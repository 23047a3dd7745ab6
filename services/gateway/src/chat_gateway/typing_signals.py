"""Typing indicators: ephemeral, bounded, and ended by a timer when the client forgets to."""

from __future__ import annotations

import asyncio

import socketio

from chat_contracts.commands import ConversationMembers
from chat_contracts.socket import TypingPayload
from chat_gateway import metrics
from chat_gateway.connections import Connection
from chat_gateway.rooms import user_rooms
from chat_platform.amqp import CommandClient


class TypingSignals:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        commands: CommandClient,
        *,
        timeout_seconds: float,
        max_in_flight: int,
    ) -> None:
        self.sio = sio
        self.commands = commands
        self.timeout_seconds = timeout_seconds
        self.max_in_flight = max_in_flight
        self._in_flight = 0

    async def typing(self, c: Connection, p: TypingPayload) -> None:
        """The `typing` event: tell the other members, and stop by itself after a while."""
        members = await self._members(c, p.conversation_id)
        timer = c.typing_timers.pop(p.conversation_id, None)
        if timer is not None:
            timer.cancel()
        if p.is_typing:
            c.typing_timers[p.conversation_id] = asyncio.get_running_loop().call_later(
                self.timeout_seconds, self.stopped, c, p.conversation_id, members
            )
        await self._emit(c, p.conversation_id, p.is_typing, members)

    def sent(self, c: Connection, conversation_id: str) -> None:
        """Sending a message ends typing now; the pending automatic stop must not say it again."""
        timer = c.typing_timers.pop(conversation_id, None)
        if timer is not None:
            timer.cancel()
            self.stopped(c, conversation_id)

    def disconnected(self, c: Connection) -> None:
        for conversation_id in c.cancel_typing():
            self.stopped(c, conversation_id)

    def stopped(
        self, c: Connection, conversation_id: str, members: list[str] | None = None
    ) -> None:
        c.typing_timers.pop(conversation_id, None)
        task = asyncio.get_running_loop().create_task(
            self._emit(c, conversation_id, False, members)
        )
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _members(self, c: Connection, conversation_id: str) -> list[str]:
        reply = await self.commands.call(
            ConversationMembers(user_id=c.user_id, conversation_id=conversation_id)
        )
        return reply.member_ids

    async def _emit(
        self, c: Connection, conversation_id: str, is_typing: bool, members: list[str] | None
    ) -> None:
        # Ephemeral signals are the first thing shed under load.
        if self._in_flight >= self.max_in_flight:
            metrics.DROPPED_SIGNALS.labels("typing").inc()
            return
        self._in_flight += 1
        try:
            if members is None:
                members = await self._members(c, conversation_id)
            others = [m for m in members if m != c.user_id]
            if others:
                payload = {
                    "conversation_id": conversation_id,
                    "user_id": c.user_id,
                    "is_typing": is_typing,
                }
                await self.sio.emit("typing", payload, to=user_rooms(others))
                metrics.EVENTS.labels("out", "typing").inc()
        except Exception:
            metrics.DROPPED_SIGNALS.labels("typing").inc()
        finally:
            self._in_flight -= 1
