"""The rules of storing sends, without I/O: what each send of a batch becomes.

The writer reads what a batch refers to (its conversations, the sends already
stored under the same keys, the replied-to messages and the attachments) and
`plan_sends` decides everything else: which sends are refused and why, which
repeat a stored message or a twin earlier in the batch, the seq of each new
message, and the documents, conversation updates and events to write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from chat_contracts import Attachment, Envelope, Message, MessageCreated
from chat_contracts.errors import forbidden, invalid, not_found
from chat_contracts.socket import MessageContent
from chat_message import PRODUCER
from chat_message.errors import no_conversation
from chat_message.ids import is_id
from chat_message.resources import message_view
from chat_message.store import block_key
from chat_platform.mongo import Document


@dataclass(frozen=True)
class SendLimits:
    max_text_chars: int
    max_attachments: int


@dataclass(frozen=True)
class Send:
    """One send: who, where, what."""

    sender_id: str
    conversation_id: str
    content: MessageContent

    @property
    def dedup_key(self) -> str:
        return dedup_key(self.sender_id, self.content.client_msg_id)


@dataclass(frozen=True)
class SendResult:
    message: Message
    created: bool
    member_ids: list[str]


def dedup_key(sender_id: str, client_msg_id: str) -> str:
    return f"{sender_id}:{client_msg_id}"


def check_content(send: Send, limits: SendLimits) -> None:
    """What can be refused without reading anything, refused before the send is queued."""
    content = send.content
    text = content.text
    if text is not None and len(text) > limits.max_text_chars:
        raise invalid(f"text is longer than {limits.max_text_chars} characters.", "text")
    if (text is None or not text.strip()) and not content.attachment_ids:
        raise invalid("A message has text or an attachment.", "text")
    if len(content.attachment_ids) > limits.max_attachments:
        raise invalid("Too many attachments.", "attachment_ids")
    if len(set(content.attachment_ids)) != len(content.attachment_ids):
        raise invalid("attachment_ids has duplicates.", "attachment_ids")
    if not is_id(send.conversation_id):
        raise no_conversation()


@dataclass(frozen=True)
class Referenced:
    """What a batch of sends refers to, as read in the batch's transaction."""

    # Conversation id -> {member_ids, last_seq}.
    conversations: dict[str, Document]
    # Dedup key -> the message already stored under it.
    stored: dict[str, Document]
    # Replied-to message id -> its conversation id.
    replies: dict[str, str]
    # Attachment id -> the attachment.
    attachments: dict[str, Document]
    # Active blocks between the members of the batch's direct conversations (`block_key`s).
    blocks: frozenset[str] = frozenset()


def references(sends: list[Send]) -> tuple[list[str], list[str], list[str], list[str]]:
    """What `Referenced` must hold for these sends: conversation, dedup, reply, attachment ids."""
    return (
        list({s.conversation_id for s in sends}),
        [s.dedup_key for s in sends],
        [r for s in sends if (r := s.content.reply_to_id) and is_id(r)],
        list({a for s in sends for a in s.content.attachment_ids}),
    )


@dataclass
class SendPlan:
    outcomes: list[SendResult | Exception]
    # The new messages, in send order (so in seq order within each conversation).
    documents: list[Document] = field(default_factory=list)
    # Conversation id -> the fields its update sets.
    conversation_updates: dict[str, Document] = field(default_factory=dict)
    events: list[Envelope] = field(default_factory=list)


def plan_sends(
    sends: list[Send], seen: Referenced, *, now: datetime, new_id: Callable[[], str]
) -> SendPlan:
    """Decide each send's outcome and what to write; seqs follow each conversation's last_seq."""
    outcomes: list[SendResult | Exception | None] = []
    accepted: list[int] = []
    first_of_key: dict[str, int] = {}
    for index, send in enumerate(sends):
        outcomes.append(_refusal_or_repeat(send, seen, sends, first_of_key))
        if outcomes[-1] is None and send.dedup_key not in first_of_key:
            first_of_key[send.dedup_key] = index
            accepted.append(index)

    plan = SendPlan(outcomes=[])
    next_seq: dict[str, int] = {}
    sent_by: dict[str, Document] = {}
    for index in accepted:
        send = sends[index]
        cid = send.conversation_id
        conversation = seen.conversations[cid]
        seq = next_seq.get(cid, conversation["last_seq"] + 1)
        next_seq[cid] = seq + 1
        doc = _message_document(send, seq, now, seen.attachments, new_id())
        plan.documents.append(doc)
        # Sending a message reads the conversation up to it, for the sender: recorded in
        # `last_sent` by the same update (see resources.sent_seq), not in the member's cursor.
        sent_by.setdefault(cid, {})[f"last_sent.{send.sender_id}"] = seq
        plan.conversation_updates[cid] = {
            "last_seq": seq,
            "last_message": doc,
            "updated_at": now,
            **sent_by[cid],
        }
        members = conversation["member_ids"]
        result = SendResult(message_view(doc), True, members)
        outcomes[index] = result
        plan.events.append(
            Envelope.wrap(MessageCreated(message=result.message, member_ids=members), PRODUCER)
        )

    # A send repeated within the batch answers with the message its twin created.
    for index, outcome in enumerate(outcomes):
        if outcome is None:
            first = outcomes[first_of_key[sends[index].dedup_key]]
            assert isinstance(first, SendResult)
            outcomes[index] = SendResult(first.message, False, first.member_ids)
    plan.outcomes = cast(list[SendResult | Exception], outcomes)  # every one is set now
    return plan


def _refusal_or_repeat(
    send: Send, seen: Referenced, sends: list[Send], first_of_key: dict[str, int]
) -> SendResult | Exception | None:
    """The outcome of a send that stores nothing new; None for one that may be stored."""
    conversation = seen.conversations.get(send.conversation_id)
    if conversation is None or send.sender_id not in conversation["member_ids"]:
        return no_conversation()
    stored = seen.stored.get(send.dedup_key)
    if stored is not None:
        if stored["conversation_id"] != send.conversation_id:
            return _key_reused()
        return SendResult(message_view(stored), False, conversation["member_ids"])
    if block_key(other_member(conversation, send.sender_id), send.sender_id) in seen.blocks:
        return forbidden("This user does not accept messages from you.")
    twin = first_of_key.get(send.dedup_key)
    if twin is not None:
        # As if the twin had been stored first: the same answer as for a stored one.
        return _key_reused() if sends[twin].conversation_id != send.conversation_id else None
    return _reference_problem(send, seen)


def other_member(conversation: Document, user_id: str) -> str:
    """In a direct conversation, the member who is not `user_id` (else an empty string)."""
    if conversation.get("type") != "direct":
        return ""
    return next((m for m in conversation["member_ids"] if m != user_id), "")


def _key_reused() -> Exception:
    return invalid("client_msg_id was already used in another conversation.", "client_msg_id")


def _reference_problem(send: Send, seen: Referenced) -> Exception | None:
    reply_to = send.content.reply_to_id
    if reply_to is not None and seen.replies.get(reply_to) != send.conversation_id:
        return invalid("reply_to_id is not a message of this conversation.", "reply_to_id")
    for attachment_id in send.content.attachment_ids:
        attachment = seen.attachments.get(attachment_id)
        if attachment is None or attachment["uploader_id"] != send.sender_id:
            return not_found(f"Attachment {attachment_id}")
    return None


def _message_document(
    send: Send, seq: int, now: datetime, attachments: dict[str, Document], message_id: str
) -> Document:
    content = send.content
    return {
        "_id": message_id,
        "conversation_id": send.conversation_id,
        "seq": seq,
        "sender_id": send.sender_id,
        "client_msg_id": content.client_msg_id,
        "dedup_key": send.dedup_key,
        "text": content.text,
        "attachments": [
            Attachment(
                id=a["_id"], name=a["name"], content_type=a["content_type"], size=a["size"]
            ).model_dump()
            for a in (attachments[i] for i in content.attachment_ids)
        ],
        "reply_to_id": content.reply_to_id,
        "created_at": now,
        "updated_at": now,
        "edited_at": None,
        "deleted": False,
    }
