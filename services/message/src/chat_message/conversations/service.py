"""Use cases of conversations: create, list, read, change members."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from chat_contracts import Conversation, ConversationUpdated, Envelope
from chat_contracts.errors import forbidden, invalid, not_found
from chat_message import PRODUCER
from chat_message.consent import Consent
from chat_message.conversations.models import AddMembers, CreateDirect, CreateGroup
from chat_message.errors import no_conversation
from chat_message.ids import new_id
from chat_message.resources import conversation_view, now_ms, utc
from chat_message.store import Store, member_doc, member_key, pair_key
from chat_platform.mongo import Document
from chat_platform.transactions import Transactions


def _updated_event(conversation: Document, removed: list[str] | None = None) -> Envelope:
    return Envelope.wrap(
        ConversationUpdated(
            conversation=conversation_view(conversation), removed_member_ids=removed or []
        ),
        PRODUCER,
    )


def _new_conversation(
    kind: str, owner_id: str, member_ids: list[str], title: str | None
) -> Document:
    now = now_ms()
    return {
        "_id": new_id(),
        "type": kind,
        "title": title,
        "owner_id": owner_id,
        "member_ids": member_ids,
        "created_at": now,
        "updated_at": now,
        "last_seq": 0,
        "last_message": None,
    }


def _encode_cursor(doc: Document) -> str:
    raw = json.dumps([utc(doc["updated_at"]).isoformat(), doc["_id"]])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        updated_at, conversation_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        # In UTC now: a forged offset at the edge of the calendar overflows here, as a 422,
        # instead of in the BSON encoder of the query, as a 500.
        return utc(datetime.fromisoformat(updated_at)).astimezone(UTC), str(conversation_id)
    except (ValueError, TypeError, OverflowError) as exc:
        raise invalid("cursor is not valid.", "cursor") from exc


class Conversations:
    def __init__(
        self,
        store: Store,
        transactions: Transactions,
        consent: Consent,
        *,
        max_group_members: int,
    ) -> None:
        self.store = store
        self.transactions = transactions
        self.consent = consent
        self.max_group_members = max_group_members

    async def create(
        self, user_id: str, body: CreateDirect | CreateGroup
    ) -> tuple[Conversation, bool]:
        """The conversation, and whether it was created (False: the direct one that existed)."""
        if isinstance(body, CreateDirect):
            return await self._create_direct(user_id, body.member_ids[0])
        members = body.member_ids
        if len(set(members)) != len(members):
            raise invalid("member_ids has duplicates.", "member_ids")
        all_members = [user_id, *(m for m in members if m != user_id)]
        self._check_group_size(len(all_members), "member_ids")
        await self._require_known_users(all_members[1:])
        await self.consent.check_invites(user_id, all_members[1:])
        doc = _new_conversation("group", user_id, all_members, body.title)

        async def write(session: AsyncClientSession) -> tuple[None, list[Envelope]]:
            await self._insert(doc, session)
            return None, [_updated_event(doc)]

        await self.transactions.commit_then_publish(write)
        return conversation_view(doc, viewer=user_id), True

    async def _create_direct(self, user_id: str, other_id: str) -> tuple[Conversation, bool]:
        if other_id == user_id:
            raise invalid("A direct conversation is with someone else.", "member_ids")
        await self._require_known_users([other_id])
        await self.consent.check_direct(user_id, other_id)
        key = pair_key(user_id, other_id)
        existing = await self.store.direct_pairs.find_one({"_id": key})
        if existing is None:
            doc = _new_conversation("direct", user_id, sorted([user_id, other_id]), None)

            async def write(session: AsyncClientSession) -> tuple[None, list[Envelope]]:
                await self.store.direct_pairs.insert_one(
                    {"_id": key, "conversation_id": doc["_id"]}, session=session
                )
                await self._insert(doc, session)
                return None, [_updated_event(doc)]

            try:
                await self.transactions.commit_then_publish(write)
                return conversation_view(doc, viewer=user_id), True
            except DuplicateKeyError:
                # The other user created it at the same moment: theirs is the one.
                existing = await self.store.direct_pairs.find_one({"_id": key})
                if existing is None:
                    raise
        return await self.get(user_id, existing["conversation_id"]), False

    async def _insert(self, doc: Document, session: AsyncClientSession) -> None:
        await self.store.conversations.insert_one(doc, session=session)
        await self.store.members.insert_many(
            [member_doc(doc["_id"], m, 0, doc["created_at"]) for m in doc["member_ids"]],
            session=session,
        )

    async def get(self, user_id: str, conversation_id: str) -> Conversation:
        doc = await self.store.conversation_for_member(conversation_id, user_id)
        cursors = await self.store.read_cursors(user_id, [conversation_id])
        return conversation_view(doc, viewer=user_id, read_seq=cursors.get(conversation_id, 0))

    async def list_page(
        self, user_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Conversation], str | None]:
        """The user's conversations, most recent activity first, `limit` at a time."""
        query: Document = {"member_ids": user_id}
        if cursor:
            updated_at, last_id = _decode_cursor(cursor)
            query["$or"] = [
                {"updated_at": {"$lt": updated_at}},
                {"updated_at": updated_at, "_id": {"$lt": last_id}},
            ]
        docs = await self.store.conversations.find(
            query, sort=[("updated_at", -1), ("_id", -1)], limit=limit + 1
        ).to_list()
        page, more = docs[:limit], len(docs) > limit
        cursors = await self.store.read_cursors(user_id, [d["_id"] for d in page])
        items = [
            conversation_view(d, viewer=user_id, read_seq=cursors.get(d["_id"], 0)) for d in page
        ]
        return items, _encode_cursor(page[-1]) if more and page else None

    async def add_members(
        self, user_id: str, conversation_id: str, body: AddMembers
    ) -> Conversation:
        doc = await self.store.conversation_for_member(conversation_id, user_id)
        if doc["type"] != "group":
            raise invalid("Members can only be added to a group.", "user_ids")
        if len(set(body.user_ids)) != len(body.user_ids):
            raise invalid("user_ids has duplicates.", "user_ids")
        new = [u for u in body.user_ids if u not in doc["member_ids"]]
        self._check_group_size(len(doc["member_ids"]) + len(new), "user_ids")
        if not new:
            return await self.get(user_id, conversation_id)
        await self._require_known_users(new)
        await self.consent.check_invites(user_id, new)
        members = self.store.members

        async def write(session: AsyncClientSession) -> tuple[None, list[Envelope]]:
            current = await self._update_membership(
                session, conversation_id, {"$addToSet": {"member_ids": {"$each": new}}}
            )
            # Checked again inside the transaction: concurrent additions must not add up past it.
            self._check_group_size(len(current["member_ids"]), "user_ids")
            for member in new:
                await members.update_one(
                    {"_id": member_key(conversation_id, member)},
                    {
                        "$setOnInsert": member_doc(
                            conversation_id, member, current["last_seq"], current["updated_at"]
                        )
                    },
                    upsert=True,
                    session=session,
                )
            return None, [_updated_event(current)]

        await self.transactions.commit_then_publish(write)
        return await self.get(user_id, conversation_id)

    async def remove_member(self, user_id: str, conversation_id: str, target_id: str) -> None:
        """Leave (target is the caller) or, for the group's owner, remove someone."""
        doc = await self.store.conversation_for_member(conversation_id, user_id)
        if doc["type"] != "group":
            raise invalid("Nobody can leave a direct conversation.", "user_id")
        if target_id not in doc["member_ids"]:
            raise not_found("Member")
        if target_id != user_id and doc["owner_id"] != user_id:
            raise forbidden("Only the group's owner can remove other members.")

        async def write(session: AsyncClientSession) -> tuple[None, list[Envelope]]:
            current = await self._update_membership(
                session, conversation_id, {"$pull": {"member_ids": target_id}}
            )
            if current["owner_id"] == target_id and current["member_ids"]:
                # The owner left: the longest-standing member takes over, so the group stays
                # managed.
                current["owner_id"] = current["member_ids"][0]
                await self.store.conversations.update_one(
                    {"_id": conversation_id},
                    {"$set": {"owner_id": current["owner_id"]}},
                    session=session,
                )
            await self.store.members.delete_one(
                {"_id": member_key(conversation_id, target_id)}, session=session
            )
            return None, [_updated_event(current, [target_id])]

        await self.transactions.commit_then_publish(write)

    async def _update_membership(
        self, session: AsyncClientSession, conversation_id: str, change: Document
    ) -> Document:
        """Apply `change` to the members, touching `updated_at`; the conversation after it."""
        current = await self.store.conversations.find_one_and_update(
            {"_id": conversation_id},
            {**change, "$set": {"updated_at": now_ms()}},
            return_document=True,
            session=session,
        )
        if current is None:
            raise no_conversation()
        return current

    def _check_group_size(self, size: int, field: str) -> None:
        if size > self.max_group_members:
            raise invalid(f"A group has at most {self.max_group_members} members.", field)

    async def _require_known_users(self, user_ids: list[str]) -> None:
        """Every id must be a registered user (the `users` projection of `user.registered`).

        A user who registered a moment ago may not have reached the projection yet,
        so a miss is re-checked briefly before it becomes an error.
        """
        wanted = set(user_ids)
        for delay in (0.0, 0.05, 0.1, 0.25, 0.5):
            if delay:
                await asyncio.sleep(delay)
            found = await self.store.users.find(
                {"_id": {"$in": list(wanted)}}, {"_id": 1}
            ).to_list()
            wanted -= {d["_id"] for d in found}
            if not wanted:
                return
        raise not_found(f"User {sorted(wanted)[0]}")
