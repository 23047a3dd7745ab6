"""Group commit of cursor moves, as for sends: one transaction for all that are waiting.

Every device acknowledges delivery of every message, so cursor moves arrive
at a multiple of the message rate. Waiting moves are validated with two `$in`
queries, coalesced per member (only the highest seq matters: cursors are
monotonic) and written with one bulk update, together with one receipt event
per cursor that actually moved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from prometheus_client import Histogram
from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from chat_contracts import Envelope, ReceiptUpdated
from chat_message.context import PRODUCER, MessageContext
from chat_message.conversations.store import member_key
from chat_message.errors import invalid, no_conversation
from chat_message.group_commit import GroupCommit, Pending
from chat_message.ids import is_id
from chat_message.views import sent_seq
from chat_platform.mongo import Document
from chat_platform.outbox import Staged

log = logging.getLogger(__name__)

CursorKind = Literal["delivered", "read"]

BATCH_SIZE = Histogram(
    "chat_message_cursor_batch_size",
    "Cursor moves per group commit.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)


@dataclass(frozen=True)
class CursorMove:
    user_id: str
    conversation_id: str
    seq: int
    kind: CursorKind


class CursorBatcher(GroupCommit[CursorMove, bool]):
    name = "cursor-batcher"

    def __init__(self, ctx: MessageContext, *, max_batch: int = 512) -> None:
        super().__init__(ctx, max_batch=max_batch)

    async def move(self, move: CursorMove) -> bool:
        """Move the member's cursor forward to `seq` (never back); True if it moved."""
        if not is_id(move.conversation_id):
            raise no_conversation()
        if move.seq < 0:
            raise invalid("seq must not be negative.", "seq")
        return await self.submit(move)

    async def _write_batch(self, batch: list[Pending[CursorMove, bool]]) -> None:
        BATCH_SIZE.observe(len(batch))

        async def body(session: AsyncClientSession) -> tuple[list[bool | Exception], Staged]:
            outcomes, events = await self._write(session, [p.request for p in batch])
            return outcomes, await self.ctx.outbox.stage(events, session)

        try:
            async with self.ctx.transaction_sessions.start() as session:
                outcomes, staged = await session.with_transaction(body)
        except Exception:
            log.exception("cursor batch failed")
            self.fail_all(batch, "The cursor could not be stored; retry.")
            return
        self.answer(batch, outcomes)
        self.publish_in_background(staged)

    async def _write(
        self, session: AsyncClientSession, moves: list[CursorMove]
    ) -> tuple[list[bool | Exception], list[Envelope]]:
        ctx = self.ctx
        conversations = {
            d["_id"]: d
            for d in await ctx.conversations.find(
                {"_id": {"$in": list({m.conversation_id for m in moves})}},
                {"member_ids": 1, "last_seq": 1, "last_sent": 1},
                session=session,
            ).to_list()
        }
        keys = list({member_key(m.conversation_id, m.user_id) for m in moves})
        cursors: dict[str, Document] = {
            d["_id"]: d
            for d in await ctx.members.find(
                {"_id": {"$in": keys}}, {"read_seq": 1, "delivered_seq": 1}, session=session
            ).to_list()
        }
        before = {}
        for key, cursor in cursors.items():
            conversation_id, user_id = key.split(":", 1)
            # A member has read (and has) everything up to their own latest message.
            sent = (
                sent_seq(conversations[conversation_id], user_id)
                if conversation_id in conversations
                else 0
            )
            before[key] = (max(cursor["read_seq"], sent), max(cursor["delivered_seq"], sent))
        after = dict(before)
        outcomes: list[bool | Exception] = []
        for move in moves:
            conversation = conversations.get(move.conversation_id)
            key = member_key(move.conversation_id, move.user_id)
            if (
                conversation is None
                or move.user_id not in conversation["member_ids"]
                or key not in after
            ):
                outcomes.append(no_conversation())
                continue
            if move.seq > conversation["last_seq"]:
                outcomes.append(
                    invalid(f"seq must be between 0 and {conversation['last_seq']}.", "seq")
                )
                continue
            read, delivered = after[key]
            # Reading implies delivery, so a read cursor drags the delivered one along.
            if move.kind == "read":
                outcomes.append(move.seq > read)
                after[key] = (max(read, move.seq), max(delivered, move.seq))
            else:
                outcomes.append(move.seq > delivered)
                after[key] = (read, max(delivered, move.seq))

        updates = []
        events = []
        for key, (read, delivered) in after.items():
            old_read, old_delivered = before[key]
            if (read, delivered) == (old_read, old_delivered):
                continue
            updates.append(
                UpdateOne({"_id": key}, {"$max": {"read_seq": read, "delivered_seq": delivered}})
            )
            conversation_id, user_id = key.split(":", 1)
            members = conversations[conversation_id]["member_ids"]
            for kind, old, new in (
                ("delivered", old_delivered, delivered),
                ("read", old_read, read),
            ):
                if new > old:
                    receipt = ReceiptUpdated(
                        conversation_id=conversation_id,
                        user_id=user_id,
                        kind=kind,
                        seq=new,
                        member_ids=members,
                    )
                    events.append(Envelope.wrap(receipt, PRODUCER))
        if updates:
            await ctx.members.bulk_write(updates, ordered=False, session=session)
        return outcomes, events
