"""Read and delivery cursors: per member, monotonic, published as receipts."""

from __future__ import annotations

from dataclasses import dataclass

from chat_contracts.errors import invalid
from chat_message.cursors.rules import CursorMove
from chat_message.errors import no_conversation
from chat_message.ids import is_id
from chat_platform.group_commit import GroupCommit


@dataclass(frozen=True)
class Cursors:
    moves: GroupCommit[CursorMove, bool]

    async def move(self, move: CursorMove) -> bool:
        """Move the member's cursor forward to `seq` (never back); True if it moved."""
        if not is_id(move.conversation_id):
            raise no_conversation()
        if move.seq < 0:
            raise invalid("seq must not be negative.", "seq")
        return await self.moves.submit(move)
