"""Storing sends: concurrent sends share one transaction (a group commit).

Sends wait in the service's group commit; `write_sends` takes everything
waiting, reads what the batch refers to with a handful of `$in` queries, lets
`rules.plan_sends`
decide the outcome and seq of each, inserts the new messages at once and
moves each conversation's `last_seq` with one bulk update, in one transaction
together with their events. The transaction makes seq allocation and the
message inserts atomic, so a crash can never leave a hole in `seq`.

Two writers (two instances) that numbered from the same `last_seq` cannot
both commit: the second inserts a (conversation, seq) the first already took,
which the unique index refuses (or the database reports as a write conflict
on the conversation), and the whole batch is written again from a fresh read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prometheus_client import Counter, Histogram
from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError

from chat_contracts import Envelope
from chat_message.ids import new_id
from chat_message.messages.rules import (
    Referenced,
    Send,
    SendResult,
    other_member,
    plan_sends,
    references,
)
from chat_message.resources import now_ms
from chat_message.store import Store, block_key
from chat_platform.metrics import LATENCY_BUCKETS, SIZE_BUCKETS
from chat_platform.transactions import Transactions

log = logging.getLogger(__name__)

STORED = Counter("chat_message_messages_stored_total", "Messages stored.")
DEDUP_HITS = Counter(
    "chat_message_dedup_hits_total", "Sends answered with an already stored message."
)
SEND_SECONDS = Histogram(
    "chat_message_send_seconds",
    "Time from a send entering the queue to its durable commit.",
    buckets=LATENCY_BUCKETS,
)
RETRIES = Counter(
    "chat_message_send_batch_retries_total",
    "Send batches written again because another writer took their seqs (or keys) first.",
)
BATCH_SECONDS = Histogram(
    "chat_message_send_batch_seconds",
    "Time to write one group commit of sends (its transaction, retries included).",
    buckets=LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram(
    "chat_message_send_batch_size", "Sends per group commit.", buckets=SIZE_BUCKETS
)

MAX_ATTEMPTS = 5


class ConversationVanished(Exception):
    """A conversation of the batch was gone when its last_seq was moved: read again."""


async def write_sends(
    store: Store, transactions: Transactions, sends: list[Send]
) -> Sequence[SendResult | Exception]:
    """Write a batch of sends (what the service's group commit of sends calls)."""
    BATCH_SIZE.observe(len(sends))
    with BATCH_SECONDS.time():
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return await transactions.commit_then_publish(
                    lambda session: _write(store, session, sends), wait_for_publish=False
                )
            except (DuplicateKeyError, BulkWriteError, ConversationVanished):
                # Another instance wrote to one of these conversations (or stored one of
                # these very sends) a moment ago; the next attempt reads what it wrote.
                RETRIES.inc()
                if attempt == MAX_ATTEMPTS:
                    raise
    raise AssertionError("unreachable")


async def _write(
    store: Store, session: AsyncClientSession, sends: list[Send]
) -> tuple[list[SendResult | Exception], list[Envelope]]:
    seen = await _read_references(store, session, sends)
    plan = plan_sends(sends, seen, now=now_ms(), new_id=new_id)
    DEDUP_HITS.inc(sum(1 for o in plan.outcomes if isinstance(o, SendResult) and not o.created))
    if not plan.documents:
        return plan.outcomes, []
    # Seqs follow the last_seq read above, in this transaction's snapshot; if another
    # writer took them meanwhile, the unique (conversation, seq) index refuses the insert.
    await store.messages.insert_many(plan.documents, ordered=True, session=session)
    moved = await store.conversations.bulk_write(
        # Not conditional on the last_seq read: the insert above already proved that
        # nobody else took these seqs, and the condition would cost the update dearly.
        [
            UpdateOne({"_id": cid}, {"$set": fields})
            for cid, fields in plan.conversation_updates.items()
        ],
        ordered=False,
        session=session,
    )
    if moved.matched_count != len(plan.conversation_updates):
        raise ConversationVanished
    for doc in plan.documents:
        if doc["attachments"]:
            await store.attachments.update_many(
                {"_id": {"$in": [a["id"] for a in doc["attachments"]]}},
                {
                    "$addToSet": {
                        "conversation_ids": doc["conversation_id"],
                        "message_ids": doc["_id"],
                    }
                },
                session=session,
            )
    STORED.inc(len(plan.documents))
    return plan.outcomes, plan.events


async def _read_references(
    store: Store, session: AsyncClientSession, sends: list[Send]
) -> Referenced:
    conversation_ids, keys, reply_ids, attachment_ids = references(sends)
    conversations = await store.conversations.find(
        {"_id": {"$in": conversation_ids}},
        {"member_ids": 1, "last_seq": 1, "type": 1},
        session=session,
    ).to_list()
    by_id = {d["_id"]: d for d in conversations}
    # Only sends into direct conversations can be refused by a block: one query, or none.
    block_keys = {
        block_key(other, s.sender_id)
        for s in sends
        if (c := by_id.get(s.conversation_id)) and (other := other_member(c, s.sender_id))
    }
    blocks = (
        await store.blocks.find(
            {"_id": {"$in": list(block_keys)}, "active": True}, {"_id": 1}, session=session
        ).to_list()
        if block_keys
        else []
    )
    stored = await store.messages.find({"dedup_key": {"$in": keys}}, session=session).to_list()
    # Most batches have neither replies nor attachments: no round trip for them then.
    replies = (
        await store.messages.find(
            {"_id": {"$in": reply_ids}}, {"conversation_id": 1}, session=session
        ).to_list()
        if reply_ids
        else []
    )
    attachments = (
        await store.attachments.find({"_id": {"$in": attachment_ids}}, session=session).to_list()
        if attachment_ids
        else []
    )
    return Referenced(
        conversations=by_id,
        stored={d["dedup_key"]: d for d in stored},
        replies={d["_id"]: d["conversation_id"] for d in replies},
        attachments={d["_id"]: d for d in attachments},
        blocks=frozenset(d["_id"] for d in blocks),
    )
