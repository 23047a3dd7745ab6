"""Reconnect sync: what a device missed, as current state, in answers of bounded size.

The device sends the last seq it holds per conversation and, optionally,
when it last synced (`since`). It gets the messages after each cursor, the
latest page of conversations it had no cursor for, then the conversations
that changed since and the messages it already held that were edited or
deleted since, and the ids of conversations it is no longer a member of.

An answer holds at most `max_messages` messages and `max_bytes` bytes of
them (at least one, so that each answer moves on). While messages after the
cursors remain, answers carry only those (`complete: false`): each moves the
device's cursors forward, so calling again with the new cursors and the same
`since` always progresses. The last answer (`complete: true`) adds what
changed; if the edits do not fit, the conversations they belong to say
`history_stale: true` and the device reloads what it shows of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from chat_contracts import Message
from chat_contracts.commands import SyncedConversation, SyncResult
from chat_contracts.errors import invalid
from chat_contracts.socket import SyncPayload
from chat_message.resources import conversation_view, message_view, now_ms, utc
from chat_message.store import Store
from chat_platform.mongo import Document


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


@dataclass
class _Budget:
    """What one answer may still carry."""

    messages: int
    bytes: int
    spent: bool = False

    def take(self, message: Message) -> bool:
        """Count `message` in, unless it does not fit (the first one always does)."""
        size = len(message.model_dump_json())
        if self.spent and (self.messages < 1 or size > self.bytes):
            return False
        self.messages -= 1
        self.bytes -= size
        self.spent = True
        return True

    def take_all(self, docs: list[Document]) -> tuple[list[Message], bool]:
        """As many of `docs` as fit, in order; and whether all of them did."""
        taken: list[Message] = []
        for doc in docs:
            message = message_view(doc)
            if not self.take(message):
                return taken, False
            taken.append(message)
        return taken, True


class Sync:
    def __init__(
        self,
        store: Store,
        *,
        messages_per_conversation: int,
        max_conversations: int,
        max_messages: int,
        max_bytes: int,
    ) -> None:
        self.store = store
        self.messages_per_conversation = messages_per_conversation
        self.max_conversations = max_conversations
        self.max_messages = max_messages
        self.max_bytes = max_bytes

    async def sync(self, user_id: str, request: SyncPayload) -> SyncResult:
        synced_at = now_ms()
        since = _since_utc(request.since)
        per_conversation = min(request.limit or self.messages_per_conversation, self.max_messages)
        conversations = await self.store.conversations.find(
            {"member_ids": user_id},
            sort=[("updated_at", -1)],
            limit=self.max_conversations,
        ).to_list()
        removed = await self._removed(user_id, request, {c["_id"] for c in conversations})
        read = await self.store.read_cursors(user_id, [c["_id"] for c in conversations])
        budget = _Budget(self.max_messages, self.max_bytes)
        pages: dict[str, tuple[list[Message], bool]] = {}
        complete = True

        # What lies after the cursors (and whole conversations new to the device) first.
        for conversation in conversations:
            cid = conversation["_id"]
            held = request.cursors.get(cid)
            if held is not None and held >= conversation["last_seq"]:
                continue
            if budget.spent and (budget.messages < 1 or not complete):
                complete = False
                continue
            docs, more = await self._page(cid, held, min(per_conversation, budget.messages))
            messages, fitted = budget.take_all(docs)
            if not fitted or (held is not None and more):
                complete = False
            pages[cid] = (messages, more or not fitted)

        # Then, once nothing is left after the cursors: what changed in what the device held.
        stale: set[str] = set()
        if complete and since is not None:
            for conversation in conversations:
                cid = conversation["_id"]
                held = request.cursors.get(cid)
                if held is None:
                    continue
                edited, fitted = budget.take_all(await self._edited(cid, held, since))
                if not fitted:
                    stale.add(cid)
                if edited or conversation["updated_at"] > since or cid in pages:
                    messages, more = pages.get(cid, ([], False))
                    pages[cid] = (edited + messages, more)

        results = [
            SyncedConversation(
                conversation=conversation_view(
                    conversation, viewer=user_id, read_seq=read.get(conversation["_id"], 0)
                ),
                messages=pages[conversation["_id"]][0],
                has_more=pages[conversation["_id"]][1],
                history_stale=conversation["_id"] in stale,
            )
            for conversation in conversations
            if conversation["_id"] in pages
        ]
        return SyncResult(
            conversations=results,
            removed_conversation_ids=removed,
            synced_at=synced_at,
            complete=complete,
        )

    async def _removed(self, user_id: str, request: SyncPayload, member_of: set[str]) -> list[str]:
        """Conversations the device holds a cursor for that the user is no longer in."""
        # A cursor for a conversation outside the page read may still be a membership
        # (the page is capped): only those the user is really out of are reported removed.
        unlisted = [cid for cid in request.cursors if cid not in member_of]
        if not unlisted:
            return []
        still_member = {
            d["_id"]
            for d in await self.store.conversations.find(
                {"_id": {"$in": unlisted}, "member_ids": user_id}, {"_id": 1}
            ).to_list()
        }
        return sorted(cid for cid in unlisted if cid not in still_member)

    async def _page(self, cid: str, held: int | None, limit: int) -> tuple[list[Document], bool]:
        """Up to `limit` messages after `held` (none held: the latest ones), ascending by seq."""
        limit = max(limit, 1)
        if held is None:
            docs = await self.store.messages.find(
                {"conversation_id": cid}, sort=[("seq", -1)], limit=limit + 1
            ).to_list()
            return list(reversed(docs[:limit])), len(docs) > limit
        docs = await self.store.messages.find(
            {"conversation_id": cid, "seq": {"$gt": held}}, sort=[("seq", 1)], limit=limit + 1
        ).to_list()
        return docs[:limit], len(docs) > limit

    async def _edited(self, cid: str, held: int, since: datetime) -> list[Document]:
        """Messages the device held that changed since it last synced (at most an answer's worth)."""
        return await self.store.messages.find(
            {
                "conversation_id": cid,
                "seq": {"$lte": held},
                "updated_at": {"$gt": since},
                # One created since and never changed reached the device as it is (live, or
                # in a page of this very sync): only those changed after their creation count.
                "$or": [
                    {"created_at": {"$lte": since}},
                    {"$expr": {"$gt": ["$updated_at", "$created_at"]}},
                ],
            },
            sort=[("seq", 1)],
            limit=self.max_messages + 1,
        ).to_list()
