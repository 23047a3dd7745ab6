"""The rules of cursor moves, without I/O: coalescing a batch into updates and receipts.

Cursors are monotonic, so of several moves of one member's cursor only the
highest seq matters; reading implies delivery, so a read cursor drags the
delivered one along; and a member has read (and has) everything up to their
own latest message (`last_sent`, kept on the conversation by sends).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chat_contracts import Envelope, ReceiptUpdated
from chat_contracts.commands import CursorKind
from chat_contracts.errors import invalid
from chat_message import PRODUCER
from chat_message.errors import no_conversation
from chat_message.resources import sent_seq
from chat_message.store import member_key
from chat_platform.mongo import Document


@dataclass(frozen=True)
class CursorMove:
    user_id: str
    conversation_id: str
    seq: int
    kind: CursorKind


@dataclass
class CursorPlan:
    # Per move: True if it moved the cursor, or why it was refused.
    outcomes: list[bool | Exception]
    # Member key -> (read_seq, delivered_seq) to store with `$max`.
    updates: dict[str, tuple[int, int]] = field(default_factory=dict)
    events: list[Envelope] = field(default_factory=list)


def plan_moves(
    moves: list[CursorMove], conversations: dict[str, Document], cursors: dict[str, Document]
) -> CursorPlan:
    """`conversations`: id -> {member_ids, last_seq, last_sent}; `cursors`: member key -> doc."""
    before: dict[str, tuple[int, int]] = {}
    for key, cursor in cursors.items():
        conversation_id, user_id = key.split(":", 1)
        conversation = conversations.get(conversation_id)
        sent = sent_seq(conversation, user_id) if conversation is not None else 0
        before[key] = (max(cursor["read_seq"], sent), max(cursor["delivered_seq"], sent))

    after = dict(before)
    plan = CursorPlan(outcomes=[])
    for move in moves:
        conversation = conversations.get(move.conversation_id)
        key = member_key(move.conversation_id, move.user_id)
        if (
            conversation is None
            or move.user_id not in conversation["member_ids"]
            or key not in after
        ):
            plan.outcomes.append(no_conversation())
            continue
        if move.seq > conversation["last_seq"]:
            plan.outcomes.append(
                invalid(f"seq must be between 0 and {conversation['last_seq']}.", "seq")
            )
            continue
        read, delivered = after[key]
        if move.kind == "read":
            plan.outcomes.append(move.seq > read)
            after[key] = (max(read, move.seq), max(delivered, move.seq))
        else:
            plan.outcomes.append(move.seq > delivered)
            after[key] = (read, max(delivered, move.seq))

    for key, (read, delivered) in after.items():
        old_read, old_delivered = before[key]
        if (read, delivered) == (old_read, old_delivered):
            continue
        plan.updates[key] = (read, delivered)
        conversation_id, user_id = key.split(":", 1)
        members = conversations[conversation_id]["member_ids"]
        kinds: list[tuple[CursorKind, int, int]] = [
            ("delivered", old_delivered, delivered),
            ("read", old_read, read),
        ]
        for kind, old, new in kinds:
            if new > old:
                receipt = ReceiptUpdated(
                    conversation_id=conversation_id,
                    user_id=user_id,
                    kind=kind,
                    seq=new,
                    member_ids=members,
                )
                plan.events.append(Envelope.wrap(receipt, PRODUCER))
    return plan
