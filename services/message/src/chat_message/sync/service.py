"""Reconnect sync: what a device missed, as current state.

The device sends the last seq it holds per conversation and, optionally,
when it last synced. It gets every conversation it belongs to (with those it
had no cursor for), the messages after each cursor (paginated), the messages
it already held that were edited or deleted since, and the ids of
conversations it is no longer a member of.
"""

from __future__ import annotations

from datetime import UTC, datetime

from chat_contracts.commands import SyncedConversation, SyncResult
from chat_contracts.errors import invalid
from chat_contracts.socket import SyncPayload
from chat_message.resources import conversation_view, message_view, now_ms, utc
from chat_message.store import Store


def _since_utc(since: datetime | None) -> datetime | None:
    """`since` in UTC; a time without an offset is taken as UTC, as the contract's times are.

    Comparing a naive time with the stored aware ones would raise, and a time at the edge
    of the calendar would overflow in the BSON encoder: both are bad input, not a crash.
    """
    if since is None:
        return None
    try:
        return utc(since).astimezone(UTC)
    except OverflowError:
        raise invalid("since is out of range.", "since") from None


class Sync:
    def __init__(
        self, store: Store, *, messages_per_conversation: int, max_conversations: int
    ) -> None:
        self.store = store
        self.messages_per_conversation = messages_per_conversation
        self.max_conversations = max_conversations

    async def sync(self, user_id: str, request: SyncPayload) -> SyncResult:
        synced_at = now_ms()
        since = _since_utc(request.since)
        per_conversation = request.limit or self.messages_per_conversation
        conversations = await self.store.conversations.find(
            {"member_ids": user_id},
            sort=[("updated_at", -1)],
            limit=self.max_conversations,
        ).to_list()
        member_of = {c["_id"] for c in conversations}
        # A cursor for a conversation outside the page above may still be a membership
        # (the page is capped): only those the user is really out of are reported removed.
        unlisted = [cid for cid in request.cursors if cid not in member_of]
        still_member = (
            {
                d["_id"]
                for d in await self.store.conversations.find(
                    {"_id": {"$in": unlisted}, "member_ids": user_id}, {"_id": 1}
                ).to_list()
            }
            if unlisted
            else set()
        )
        removed = sorted(cid for cid in unlisted if cid not in still_member)
        read = await self.store.read_cursors(user_id, list(member_of))
        results: list[SyncedConversation] = []
        for conversation in conversations:
            cid = conversation["_id"]
            held = request.cursors.get(cid)
            if held is None:
                # New to this device: its latest page, as when opening it.
                docs = await self.store.messages.find(
                    {"conversation_id": cid}, sort=[("seq", -1)], limit=per_conversation + 1
                ).to_list()
                page, more = list(reversed(docs[:per_conversation])), len(docs) > per_conversation
            else:
                # Most conversations of a reconnecting device had no new message: last_seq says
                # so without a query (it moves in the transaction that stores the messages).
                docs = (
                    await self.store.messages.find(
                        {"conversation_id": cid, "seq": {"$gt": held}},
                        sort=[("seq", 1)],
                        limit=per_conversation + 1,
                    ).to_list()
                    if held < conversation["last_seq"]
                    else []
                )
                page, more = docs[:per_conversation], len(docs) > per_conversation
                changed_meanwhile = since is not None and conversation["updated_at"] > since
                if since is not None:
                    edited = await self.store.messages.find(
                        {
                            "conversation_id": cid,
                            "seq": {"$lte": held},
                            "updated_at": {"$gt": since},
                        },
                        sort=[("seq", 1)],
                        limit=500,
                    ).to_list()
                    page = edited + page
                if not page and not changed_meanwhile:
                    continue  # the device is up to date here
            results.append(
                SyncedConversation(
                    conversation=conversation_view(
                        conversation, viewer=user_id, read_seq=read.get(cid, 0)
                    ),
                    messages=[message_view(d) for d in page],
                    has_more=more,
                )
            )
        return SyncResult(
            conversations=results, removed_conversation_ids=removed, synced_at=synced_at
        )
