"""The planners of the send and cursor writers, without a database.

The writers read what a batch refers to and hand it to these pure functions;
everything a batch decides (refusals, repeats, twins, seqs, receipts) is
checked here on plain documents.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from chat_contracts import ErrorCode, MessageCreated, ReceiptUpdated
from chat_contracts.errors import ApiError
from chat_contracts.socket import MessageContent
from chat_message.cursors.rules import CursorMove, plan_moves
from chat_message.messages.rules import Referenced, Send, SendResult, plan_sends, references
from chat_message.store import member_key

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
C1, C2 = "65a000000000000000000001", "65a000000000000000000002"


def send(sender: str, conversation: str, key: str, **fields: Any) -> Send:
    content = MessageContent.model_validate({"client_msg_id": key, "text": "hi", **fields})
    return Send(sender, conversation, content)


def ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"m{next(counter)}"


def seen(**overrides: Any) -> Referenced:
    base: dict[str, Any] = {
        "conversations": {
            C1: {"_id": C1, "member_ids": ["u1", "u2"], "last_seq": 4},
            C2: {"_id": C2, "member_ids": ["u1", "u3"], "last_seq": 0},
        },
        "stored": {},
        "replies": {},
        "attachments": {},
    }
    return Referenced(**{**base, **overrides})


def stored_message(seq: int, conversation: str, key: str) -> dict[str, Any]:
    return {
        "_id": f"old{seq}",
        "conversation_id": conversation,
        "seq": seq,
        "sender_id": "u1",
        "client_msg_id": key,
        "text": "before",
        "attachments": [],
        "reply_to_id": None,
        "created_at": NOW,
        "edited_at": None,
        "deleted": False,
    }


def error_code(outcome: SendResult | Exception) -> ErrorCode:
    assert isinstance(outcome, ApiError), outcome
    return outcome.code


def test_new_sends_take_the_next_seqs_of_each_conversation_in_order() -> None:
    sends = [send("u1", C1, "a"), send("u2", C1, "b"), send("u1", C2, "c"), send("u1", C1, "d")]
    plan = plan_sends(sends, seen(), now=NOW, new_id=ids())
    assert [d["seq"] for d in plan.documents] == [5, 6, 1, 7]
    assert [(o.message.seq, o.created) for o in plan.outcomes if isinstance(o, SendResult)] == [
        (5, True), (6, True), (1, True), (7, True),
    ]  # fmt: skip
    assert plan.conversation_updates[C1]["last_seq"] == 7
    assert plan.conversation_updates[C1]["last_message"]["_id"] == plan.documents[3]["_id"]
    assert plan.conversation_updates[C1]["last_sent.u1"] == 7
    assert plan.conversation_updates[C1]["last_sent.u2"] == 6
    assert plan.conversation_updates[C2]["last_seq"] == 1
    events = [e.unwrap() for e in plan.events]
    assert all(isinstance(e, MessageCreated) for e in events)
    assert [e.message.seq for e in events if isinstance(e, MessageCreated)] == [5, 6, 1, 7]


def test_a_stored_send_is_answered_with_the_stored_message_and_takes_no_seq() -> None:
    earlier = stored_message(3, C1, "a")
    plan = plan_sends(
        [send("u1", C1, "a"), send("u1", C1, "b")],
        seen(stored={"u1:a": earlier}),
        now=NOW,
        new_id=ids(),
    )
    repeat, new = plan.outcomes
    assert isinstance(repeat, SendResult)
    assert (repeat.message.id, repeat.message.seq, repeat.created) == ("old3", 3, False)
    assert isinstance(new, SendResult)
    assert (new.message.seq, new.created) == (5, True)
    assert len(plan.documents) == len(plan.events) == 1


def test_twins_in_one_batch_store_one_message_and_both_get_it() -> None:
    plan = plan_sends(
        [send("u1", C1, "a"), send("u1", C1, "a", text="retry")], seen(), now=NOW, new_id=ids()
    )
    first, twin = plan.outcomes
    assert isinstance(first, SendResult)
    assert isinstance(twin, SendResult)
    assert first.created
    assert not twin.created
    assert twin.message == first.message
    assert len(plan.documents) == 1


def test_a_key_reused_in_another_conversation_is_refused_stored_or_in_the_batch() -> None:
    plan = plan_sends(
        [send("u1", C1, "a"), send("u1", C2, "a"), send("u1", C2, "z")],
        seen(stored={"u1:z": stored_message(2, C1, "z")}),
        now=NOW,
        new_id=ids(),
    )
    assert isinstance(plan.outcomes[0], SendResult)
    assert error_code(plan.outcomes[1]) == ErrorCode.VALIDATION_ERROR
    assert error_code(plan.outcomes[2]) == ErrorCode.VALIDATION_ERROR
    assert [d["seq"] for d in plan.documents] == [5]


def test_non_members_and_unknown_conversations_learn_nothing() -> None:
    plan = plan_sends(
        [send("u3", C1, "a"), send("u1", "65a0000000000000000000ff", "b")],
        seen(),
        now=NOW,
        new_id=ids(),
    )
    assert [error_code(o) for o in plan.outcomes] == [ErrorCode.NOT_FOUND, ErrorCode.NOT_FOUND]
    assert plan.documents == []
    assert plan.events == []
    assert plan.conversation_updates == {}


def test_references_must_belong_to_the_conversation_and_the_sender() -> None:
    referenced = seen(
        replies={"m-here": C1, "m-elsewhere": C2},
        attachments={
            "a1": {"_id": "a1", "uploader_id": "u1", "name": "a.png", "content_type": "image/png", "size": 3},
            "a2": {"_id": "a2", "uploader_id": "u2", "name": "b.png", "content_type": "image/png", "size": 4},
        },
    )  # fmt: skip
    sends = [
        send("u1", C1, "ok-reply", reply_to_id="m-here"),
        send("u1", C1, "ok-file", attachment_ids=["a1"]),
        send("u1", C1, "bad-reply", reply_to_id="m-elsewhere"),
        send("u1", C1, "no-reply", reply_to_id="m?"),
        send("u1", C1, "their-file", attachment_ids=["a2"]),
        send("u1", C1, "missing-file", attachment_ids=["a1", "a3"]),
    ]
    plan = plan_sends(sends, referenced, now=NOW, new_id=ids())
    ok_reply, ok_file, *refused = plan.outcomes
    assert isinstance(ok_reply, SendResult)
    assert ok_reply.message.reply_to_id == "m-here"
    assert isinstance(ok_file, SendResult)
    assert [a.id for a in ok_file.message.attachments] == ["a1"]
    assert [error_code(o) for o in refused] == [
        ErrorCode.VALIDATION_ERROR, ErrorCode.VALIDATION_ERROR, ErrorCode.NOT_FOUND, ErrorCode.NOT_FOUND,
    ]  # fmt: skip
    assert [d["seq"] for d in plan.documents] == [5, 6]


def test_references_name_what_the_writer_must_read() -> None:
    sends = [
        send("u1", C1, "a", reply_to_id="65a0000000000000000000aa", attachment_ids=["x", "y"]),
        send("u2", C1, "b", reply_to_id="not-an-id", attachment_ids=["y"]),
    ]
    conversations, keys, replies, attachments = references(sends)
    assert conversations == [C1]
    assert keys == ["u1:a", "u2:b"]
    assert replies == ["65a0000000000000000000aa"]
    assert sorted(attachments) == ["x", "y"]


# --- cursor moves -----------------------------------------------------------------------------


def cursors(**seqs: tuple[int, int]) -> dict[str, dict[str, int]]:
    return {
        member_key(C1, user): {"read_seq": read, "delivered_seq": delivered}
        for user, (read, delivered) in seqs.items()
    }


CONVERSATIONS = {
    C1: {"_id": C1, "member_ids": ["u1", "u2"], "last_seq": 10, "last_sent": {"u2": 6}}
}


def receipts(events: list[Any]) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    for envelope in events:
        event = envelope.unwrap()
        assert isinstance(event, ReceiptUpdated)
        out.append((event.user_id, event.kind, event.seq))
    return out


def test_moves_of_one_cursor_coalesce_to_the_highest_and_read_drags_delivered() -> None:
    moves = [
        CursorMove("u1", C1, 3, "delivered"),
        CursorMove("u1", C1, 7, "delivered"),
        CursorMove("u1", C1, 5, "read"),
        CursorMove("u1", C1, 4, "delivered"),
    ]
    plan = plan_moves(moves, CONVERSATIONS, cursors(u1=(2, 2)))
    assert plan.outcomes == [True, True, True, False]
    assert plan.updates == {member_key(C1, "u1"): (5, 7)}
    assert receipts(plan.events) == [("u1", "delivered", 7), ("u1", "read", 5)]


def test_own_messages_count_as_read_so_moves_below_them_change_nothing() -> None:
    plan = plan_moves([CursorMove("u2", C1, 5, "read")], CONVERSATIONS, cursors(u2=(0, 0)))
    assert plan.outcomes == [False]
    assert plan.updates == {}
    assert plan.events == []


def test_bad_moves_are_refused_and_store_nothing() -> None:
    moves = [
        CursorMove("u1", C1, 11, "read"),
        CursorMove("u3", C1, 1, "read"),
        CursorMove("u1", C2, 1, "read"),
    ]
    plan = plan_moves(moves, CONVERSATIONS, cursors(u1=(0, 0)))
    codes = [o.code if isinstance(o, ApiError) else o for o in plan.outcomes]
    assert codes == [ErrorCode.VALIDATION_ERROR, ErrorCode.NOT_FOUND, ErrorCode.NOT_FOUND]
    assert plan.updates == {}
    assert plan.events == []
