"""Use cases of messages: send, history, edit, delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from chat_contracts import Envelope, Message, MessageDeleted, MessageUpdated
from chat_contracts.errors import conflict, forbidden, invalid
from chat_contracts.socket import MessageContent
from chat_message import PRODUCER
from chat_message.attachments.service import Attachments
from chat_message.errors import no_message
from chat_message.ids import is_id
from chat_message.messages.rules import Send, SendLimits, SendResult, check_content
from chat_message.resources import message_view, now_ms
from chat_message.store import Store
from chat_platform.group_commit import GroupCommit
from chat_platform.mongo import Document
from chat_platform.transactions import Transactions


@dataclass(frozen=True)
class Messages:
    store: Store
    transactions: Transactions
    # The group commit that stores sends (with `messages.writer.SendWriter`).
    sends: GroupCommit[Send, SendResult]
    limits: SendLimits
    attachments: Attachments

    async def send(
        self, sender_id: str, conversation_id: str, content: MessageContent
    ) -> SendResult:
        """Store a message (or find the one this `client_msg_id` already stored).

        REST and the gateways' command both come here: the rules are checked once.
        """
        send = Send(sender_id, conversation_id, content)
        check_content(send, self.limits)
        return await self.sends.submit(send)

    async def history(
        self,
        user_id: str,
        conversation_id: str,
        *,
        before_seq: int | None,
        after_seq: int | None,
        limit: int,
    ) -> tuple[list[Message], bool]:
        """Messages ascending by seq: the newest before `before_seq`, or the oldest after `after_seq`."""
        if before_seq is not None and after_seq is not None:
            raise invalid("Give before_seq or after_seq, not both.", "before_seq")
        conversation = await self.store.conversation_for_member(conversation_id, user_id)
        last_seq = conversation["last_seq"]
        _check_seq_cursor("before_seq", before_seq, last_seq, upper=last_seq + 1)
        _check_seq_cursor("after_seq", after_seq, last_seq, upper=last_seq)
        messages = self.store.messages
        if after_seq is not None:
            docs = await messages.find(
                {"conversation_id": conversation_id, "seq": {"$gt": after_seq}},
                sort=[("seq", 1)],
                limit=limit + 1,
            ).to_list()
            page, more = docs[:limit], len(docs) > limit
        else:
            query: Document = {"conversation_id": conversation_id}
            if before_seq is not None:
                query["seq"] = {"$lt": before_seq}
            docs = await messages.find(query, sort=[("seq", -1)], limit=limit + 1).to_list()
            page, more = list(reversed(docs[:limit])), len(docs) > limit
        return [message_view(d) for d in page], more

    async def edit(self, user_id: str, conversation_id: str, message_id: str, text: str) -> Message:
        limit = self.limits.max_text_chars
        if len(text) > limit:
            raise invalid(f"text is longer than {limit} characters.", "text")
        conversation, doc = await self._own_message(user_id, conversation_id, message_id)
        if doc.get("deleted"):
            raise conflict("The message was deleted.")
        if not text.strip() and not doc["attachments"]:
            raise invalid("A message has text or an attachment.", "text")
        now = now_ms()
        changes: dict[str, Any] = {"text": text, "edited_at": now, "updated_at": now}
        return await self._change(conversation, doc, changes, MessageUpdated)

    async def delete(self, user_id: str, conversation_id: str, message_id: str) -> None:
        """Leave a tombstone: the seq stays taken, the content goes."""
        conversation, doc = await self._own_message(user_id, conversation_id, message_id)
        if doc.get("deleted"):
            return
        changes: dict[str, Any] = {
            "text": None,
            "attachments": [],
            "deleted": True,
            "updated_at": now_ms(),
        }
        await self._change(conversation, doc, changes, MessageDeleted)
        # After the commit: a crash in between leaves them to the sweep of unused ones.
        await self.attachments.release(doc["_id"], [a["id"] for a in doc["attachments"]])

    async def _own_message(
        self, user_id: str, conversation_id: str, message_id: str
    ) -> tuple[Document, Document]:
        conversation = await self.store.conversation_for_member(conversation_id, user_id)
        doc = (
            await self.store.messages.find_one(
                {"_id": message_id, "conversation_id": conversation_id}
            )
            if is_id(message_id)
            else None
        )
        if doc is None:
            raise no_message()
        if doc["sender_id"] != user_id:
            raise forbidden("Only the sender can change a message.")
        return conversation, doc

    async def _change(
        self,
        conversation: Document,
        message: Document,
        changes: Document,
        event: type[MessageUpdated] | type[MessageDeleted],
    ) -> Message:
        updated = {**message, **changes}
        view = message_view(updated)
        envelope = Envelope.wrap(
            event(message=view, member_ids=conversation["member_ids"]), PRODUCER
        )

        async def write(session: AsyncClientSession) -> tuple[None, list[Envelope]]:
            await self.store.messages.update_one(
                {"_id": message["_id"]}, {"$set": changes}, session=session
            )
            # Keep the conversation's preview in step when the last message changes.
            await self.store.conversations.update_one(
                {"_id": conversation["_id"], "last_message._id": message["_id"]},
                {"$set": {"last_message": updated}},
                session=session,
            )
            return None, [envelope]

        await self.transactions.commit_then_publish(write)
        return view


def _check_seq_cursor(name: str, value: int | None, last_seq: int, *, upper: int) -> None:
    if value is not None and not 0 <= value <= upper:
        raise invalid(f"{name} must be between 0 and {upper} (last_seq is {last_seq}).", name)
