"""Storing cursor moves: a group commit, as for sends.

Every device acknowledges delivery of every message, so cursor moves arrive
at a multiple of the message rate. Waiting moves are read with two `$in`
queries, coalesced by `rules.plan_moves` and written with one bulk update,
together with one receipt event per cursor that actually moved.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Histogram
from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from chat_contracts import Envelope
from chat_contracts.errors import invalid
from chat_message.cursors.rules import CursorMove, plan_moves
from chat_message.errors import no_conversation
from chat_message.ids import is_id
from chat_message.store import Store, member_key
from chat_platform.group_commit import GroupCommit
from chat_platform.metrics import SIZE_BUCKETS
from chat_platform.transactions import Transactions

BATCH_SIZE = Histogram(
    "chat_message_cursor_batch_size", "Cursor moves per group commit.", buckets=SIZE_BUCKETS
)


class CursorWriter:
    """Moves cursors in batches; `run()` must run (in the service's task group) while in use."""

    def __init__(
        self, store: Store, transactions: Transactions, *, max_batch: int, max_waiting: int
    ) -> None:
        self.store = store
        self.transactions = transactions
        self._group = GroupCommit(
            self._write_batch,
            name="cursor-writer",
            max_batch=max_batch,
            max_waiting=max_waiting,
            failure_message="The cursor could not be stored; retry.",
        )

    async def move(self, move: CursorMove) -> bool:
        """Move the member's cursor forward to `seq` (never back); True if it moved."""
        if not is_id(move.conversation_id):
            raise no_conversation()
        if move.seq < 0:
            raise invalid("seq must not be negative.", "seq")
        return await self._group.submit(move)

    async def run(self) -> None:
        await self._group.run()

    async def stop(self) -> None:
        await self._group.stop()

    async def _write_batch(self, moves: list[CursorMove]) -> Sequence[bool | Exception]:
        BATCH_SIZE.observe(len(moves))
        return await self.transactions.commit_then_publish(
            lambda session: self._write(session, moves), wait_for_publish=False
        )

    async def _write(
        self, session: AsyncClientSession, moves: list[CursorMove]
    ) -> tuple[list[bool | Exception], list[Envelope]]:
        conversations = await self.store.conversations.find(
            {"_id": {"$in": list({m.conversation_id for m in moves})}},
            {"member_ids": 1, "last_seq": 1, "last_sent": 1},
            session=session,
        ).to_list()
        cursors = await self.store.members.find(
            {"_id": {"$in": list({member_key(m.conversation_id, m.user_id) for m in moves})}},
            {"read_seq": 1, "delivered_seq": 1},
            session=session,
        ).to_list()
        plan = plan_moves(
            moves, {d["_id"]: d for d in conversations}, {d["_id"]: d for d in cursors}
        )
        if plan.updates:
            await self.store.members.bulk_write(
                [
                    UpdateOne(
                        {"_id": key}, {"$max": {"read_seq": read, "delivered_seq": delivered}}
                    )
                    for key, (read, delivered) in plan.updates.items()
                ],
                ordered=False,
                session=session,
            )
        return plan.outcomes, plan.events
