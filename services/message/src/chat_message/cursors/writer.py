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
from chat_message.cursors.rules import CursorMove, plan_moves
from chat_message.store import Store, member_key
from chat_platform.metrics import SIZE_BUCKETS
from chat_platform.transactions import Transactions

BATCH_SIZE = Histogram(
    "chat_message_cursor_batch_size", "Cursor moves per group commit.", buckets=SIZE_BUCKETS
)


async def write_moves(
    store: Store, transactions: Transactions, moves: list[CursorMove]
) -> Sequence[bool | Exception]:
    """Write a batch of cursor moves (what the service's group commit of moves calls)."""
    BATCH_SIZE.observe(len(moves))
    return await transactions.commit_then_publish(
        lambda session: _write(store, session, moves), wait_for_publish=False
    )


async def _write(
    store: Store, session: AsyncClientSession, moves: list[CursorMove]
) -> tuple[list[bool | Exception], list[Envelope]]:
    conversations = await store.conversations.find(
        {"_id": {"$in": list({m.conversation_id for m in moves})}},
        {"member_ids": 1, "last_seq": 1, "last_sent": 1},
        session=session,
    ).to_list()
    cursors = await store.members.find(
        {"_id": {"$in": list({member_key(m.conversation_id, m.user_id) for m in moves})}},
        {"read_seq": 1, "delivered_seq": 1},
        session=session,
    ).to_list()
    plan = plan_moves(moves, {d["_id"]: d for d in conversations}, {d["_id"]: d for d in cursors})
    if plan.updates:
        await store.members.bulk_write(
            [
                UpdateOne({"_id": key}, {"$max": {"read_seq": read, "delivered_seq": delivered}})
                for key, (read, delivered) in plan.updates.items()
            ],
            ordered=False,
            session=session,
        )
    return plan.outcomes, plan.events
