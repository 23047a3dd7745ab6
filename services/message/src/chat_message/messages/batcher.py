"""Group commit of sends: concurrent sends share one transaction.

The embedded database (and MongoDB over a network) costs about a millisecond
per round trip, so writing each message on its own caps a process at a few
hundred messages a second. Sends wait in a queue; one writer takes everything
waiting, validates it with a handful of `$in` queries, numbers the messages
after each conversation's `last_seq`, inserts them all at once and moves each
conversation's `last_seq` with one bulk update, in one transaction together
with their events. The transaction makes seq allocation and the message
inserts atomic, so a crash can never leave a hole in `seq`.

Two writers (two instances) that numbered from the same `last_seq` cannot
both commit: the second inserts a (conversation, seq) the first already took,
which the unique index refuses (or the database reports as a write conflict
on the conversation), and the whole batch is retried from a fresh read.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from prometheus_client import Counter, Histogram
from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError

from chat_contracts import Attachment, Envelope, Message, MessageCreated
from chat_message.context import PRODUCER, MessageContext
from chat_message.errors import invalid, no_conversation
from chat_message.group_commit import GroupCommit, Pending
from chat_message.ids import is_id, new_id
from chat_message.messages.models import SendCommand
from chat_message.views import message_view, now_ms
from chat_platform.errors import not_found
from chat_platform.mongo import Document
from chat_platform.outbox import Staged

log = logging.getLogger(__name__)

STORED = Counter("chat_message_messages_stored_total", "Messages stored.")
DEDUP_HITS = Counter(
    "chat_message_dedup_hits_total", "Sends answered with an already stored message."
)
SEND_SECONDS = Histogram(
    "chat_message_send_seconds",
    "Time from a send entering the queue to its durable commit.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
RETRIES = Counter(
    "chat_message_send_batch_retries_total",
    "Send batches written again because another writer took their seqs (or keys) first.",
)
BATCH_SECONDS = Histogram(
    "chat_message_send_batch_seconds",
    "Time to write one group commit of sends (its transaction, retries included).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
BATCH_SIZE = Histogram(
    "chat_message_send_batch_size",
    "Sends per group commit.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)


@dataclass(frozen=True)
class SendResult:
    message: Message
    created: bool
    member_ids: list[str]


MAX_ATTEMPTS = 5
UNSTORED = "The message could not be stored; retry."


class SeqConflict(Exception):
    """A conversation's last_seq moved under the batch; the batch is retried from scratch."""


def dedup_key(sender_id: str, client_msg_id: str) -> str:
    return f"{sender_id}:{client_msg_id}"


class SendBatcher(GroupCommit[SendCommand, SendResult]):
    name = "send-batcher"

    def __init__(self, ctx: MessageContext, *, max_batch: int = 256) -> None:
        super().__init__(ctx, max_batch=max_batch)

    async def send(self, request: SendCommand) -> SendResult:
        self._check_shape(request)
        return await self.submit(request)

    def _check_shape(self, request: SendCommand) -> None:
        """What can be refused without the database, refused before queueing."""
        limit = self.ctx.settings.max_text_chars
        text = request.text
        if text is not None and len(text) > limit:
            raise invalid(f"text is longer than {limit} characters.", "text")
        if (text is None or not text.strip()) and not request.attachment_ids:
            raise invalid("A message has text or an attachment.", "text")
        if len(request.attachment_ids) > self.ctx.settings.max_attachments_per_message:
            raise invalid("Too many attachments.", "attachment_ids")
        if len(set(request.attachment_ids)) != len(request.attachment_ids):
            raise invalid("attachment_ids has duplicates.", "attachment_ids")
        if not is_id(request.conversation_id):
            raise no_conversation()

    async def _write_batch(self, batch: list[Pending[SendCommand, SendResult]]) -> None:
        BATCH_SIZE.observe(len(batch))
        with BATCH_SECONDS.time():
            await self._write_and_answer(batch)

    async def _write_and_answer(self, batch: list[Pending[SendCommand, SendResult]]) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                outcomes, staged = await self._commit(batch)
                break
            except (DuplicateKeyError, BulkWriteError, SeqConflict):
                # Another instance wrote to one of these conversations (or stored one of
                # these very sends) a moment ago; the next attempt reads what it wrote.
                RETRIES.inc()
                if attempt == MAX_ATTEMPTS:
                    log.exception("send batch failed after retries")
                    self.fail_all(batch, UNSTORED)
                    return
            except Exception:
                log.exception("send batch failed")
                self.fail_all(batch, UNSTORED)
                return
        now = time.perf_counter()
        for pending in batch:
            SEND_SECONDS.observe(now - pending.queued_at)
        self.answer(batch, outcomes)
        self.publish_in_background(staged)

    async def _commit(
        self, batch: list[Pending[SendCommand, SendResult]]
    ) -> tuple[list[SendResult | Exception], Staged]:
        async def body(session: AsyncClientSession) -> tuple[list[SendResult | Exception], Staged]:
            results, events = await self._write(session, [p.request for p in batch])
            return results, await self.ctx.outbox.stage(events, session)

        async with self.ctx.transaction_sessions.start() as session:
            return await session.with_transaction(body)

    async def _write(
        self, session: AsyncClientSession, requests: list[SendCommand]
    ) -> tuple[list[SendResult | Exception], list[Envelope]]:
        ctx = self.ctx
        conversation_ids = list({r.conversation_id for r in requests})
        keys = [dedup_key(r.sender_id, r.client_msg_id) for r in requests]
        reply_ids = [r.reply_to_id for r in requests if r.reply_to_id and is_id(r.reply_to_id)]
        attachment_ids = list({a for r in requests for a in r.attachment_ids})

        conversations = {
            d["_id"]: d
            for d in await ctx.conversations.find(
                {"_id": {"$in": conversation_ids}},
                {"member_ids": 1, "last_seq": 1},
                session=session,
            ).to_list()
        }
        existing = {
            d["dedup_key"]: d
            for d in await ctx.messages.find(
                {"dedup_key": {"$in": keys}}, session=session
            ).to_list()
        }
        # Most batches have neither replies nor attachments: no round trip for them then.
        replies = (
            {
                d["_id"]: d["conversation_id"]
                for d in await ctx.messages.find(
                    {"_id": {"$in": reply_ids}}, {"conversation_id": 1}, session=session
                ).to_list()
            }
            if reply_ids
            else {}
        )
        attachments = (
            {
                d["_id"]: d
                for d in await ctx.attachments.find(
                    {"_id": {"$in": attachment_ids}}, session=session
                ).to_list()
            }
            if attachment_ids
            else {}
        )

        outcomes: list[SendResult | Exception | None] = []
        accepted: list[tuple[int, SendCommand]] = []
        seen_in_batch: dict[str, int] = {}
        for index, (request, key) in enumerate(zip(requests, keys, strict=True)):
            conversation = conversations.get(request.conversation_id)
            if conversation is None or request.sender_id not in conversation["member_ids"]:
                outcomes.append(no_conversation())
                continue
            if key in existing:
                stored = existing[key]
                if stored["conversation_id"] != request.conversation_id:
                    outcomes.append(
                        invalid(
                            "client_msg_id was already used in another conversation.",
                            "client_msg_id",
                        )
                    )
                else:
                    DEDUP_HITS.inc()
                    outcomes.append(
                        SendResult(message_view(stored), False, conversation["member_ids"])
                    )
                continue
            if key in seen_in_batch:
                if requests[seen_in_batch[key]].conversation_id != request.conversation_id:
                    # As if the twin had been stored first: the same answer as for `existing`.
                    outcomes.append(
                        invalid(
                            "client_msg_id was already used in another conversation.",
                            "client_msg_id",
                        )
                    )
                else:
                    outcomes.append(None)  # the twin of an earlier send in this batch; filled below
                continue
            problem = _reference_problem(request, replies, attachments)
            if problem is not None:
                outcomes.append(problem)
                continue
            seen_in_batch[key] = index
            outcomes.append(None)
            accepted.append((index, request))

        if not accepted:
            return [_resolve(o) for o in outcomes], []

        # Seqs follow the last_seq read above, in this transaction's snapshot; if another
        # writer took them meanwhile, the unique (conversation, seq) index refuses the insert.
        next_seq = {
            request.conversation_id: conversations[request.conversation_id]["last_seq"] + 1
            for _, request in accepted
        }

        now = now_ms()
        documents: list[Document] = []
        events: list[Envelope] = []
        last_in_conversation: dict[str, Document] = {}
        for index, request in accepted:
            seq = next_seq[request.conversation_id]
            next_seq[request.conversation_id] = seq + 1
            doc = _message_document(request, seq, now, attachments)
            documents.append(doc)
            last_in_conversation[request.conversation_id] = doc
            members = conversations[request.conversation_id]["member_ids"]
            result = SendResult(message_view(doc), True, members)
            outcomes[index] = result
            events.append(
                Envelope.wrap(MessageCreated(message=result.message, member_ids=members), PRODUCER)
            )
        await ctx.messages.insert_many(documents, ordered=True, session=session)
        # Sending a message reads the conversation up to it, for the sender: recorded in
        # `last_sent` by the same update (see views.sent_seq), not in the member's cursor.
        sent_by: dict[str, dict[str, int]] = defaultdict(dict)
        for doc in documents:
            sent_by[doc["conversation_id"]][f"last_sent.{doc['sender_id']}"] = doc["seq"]
        moved = await ctx.conversations.bulk_write(
            [
                # Not conditional on the last_seq read: the insert above already proved that
                # nobody else took these seqs (the condition costs the embedded database as
                # much as a third of the update).
                UpdateOne(
                    {"_id": cid},
                    {
                        "$set": {
                            "last_seq": doc["seq"],
                            "last_message": doc,
                            "updated_at": now,
                            **sent_by[cid],
                        }
                    },
                )
                for cid, doc in last_in_conversation.items()
            ],
            ordered=False,
            session=session,
        )
        if moved.matched_count != len(last_in_conversation):
            raise SeqConflict  # a conversation vanished under the batch: read again
        used = {a["id"] for doc in documents for a in doc["attachments"]}
        if used:
            for doc in documents:
                if doc["attachments"]:
                    await ctx.attachments.update_many(
                        {"_id": {"$in": [a["id"] for a in doc["attachments"]]}},
                        {"$addToSet": {"conversation_ids": doc["conversation_id"]}},
                        session=session,
                    )
        STORED.inc(len(documents))

        # A send repeated within one batch answers with the message its twin created.
        for index, outcome in enumerate(outcomes):
            if outcome is None:
                twin = seen_in_batch[keys[index]]
                first = outcomes[twin]
                assert isinstance(first, SendResult)
                outcomes[index] = SendResult(first.message, False, first.member_ids)
        return [_resolve(o) for o in outcomes], events


def _resolve(outcome: SendResult | Exception | None) -> SendResult | Exception:
    assert outcome is not None
    return outcome


def _reference_problem(
    request: SendCommand, replies: dict[str, str], attachments: dict[str, Document]
) -> Exception | None:
    if (
        request.reply_to_id is not None
        and replies.get(request.reply_to_id) != request.conversation_id
    ):
        return invalid("reply_to_id is not a message of this conversation.", "reply_to_id")
    for attachment_id in request.attachment_ids:
        attachment = attachments.get(attachment_id)
        if attachment is None or attachment["uploader_id"] != request.sender_id:
            return not_found(f"Attachment {attachment_id}")
    return None


def _message_document(
    request: SendCommand, seq: int, now: object, attachments: dict[str, Document]
) -> Document:
    return {
        "_id": new_id(),
        "conversation_id": request.conversation_id,
        "seq": seq,
        "sender_id": request.sender_id,
        "client_msg_id": request.client_msg_id,
        "dedup_key": dedup_key(request.sender_id, request.client_msg_id),
        "text": request.text,
        "attachments": [
            Attachment(
                id=a["_id"], name=a["name"], content_type=a["content_type"], size=a["size"]
            ).model_dump()
            for a in (attachments[i] for i in request.attachment_ids)
        ],
        "reply_to_id": request.reply_to_id,
        "created_at": now,
        "updated_at": now,
        "edited_at": None,
        "deleted": False,
    }
