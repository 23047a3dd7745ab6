"""Read and delivery cursors: per member, monotonic, published as receipts."""

from __future__ import annotations

from chat_message.context import MessageContext
from chat_message.cursors.batcher import CursorKind, CursorMove


async def move_cursor(
    ctx: MessageContext, user_id: str, conversation_id: str, seq: int, kind: CursorKind
) -> bool:
    """Move the member's cursor forward to `seq` (never back); True if it moved."""
    return await ctx.cursors.move(CursorMove(user_id, conversation_id, seq, kind))
