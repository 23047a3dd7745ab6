"""Every index of the message service; the unique ones carry invariants."""

from __future__ import annotations

from chat_platform.mongo import Index

INDEXES = [
    # One direct conversation per pair of users, however many create it at once: by the
    # `_id` of `direct_pairs`, not an index on conversations, whose every index each send
    # rewrites.
    Index(
        "conversations", [("member_ids", 1), ("updated_at", -1), ("_id", -1)], {"name": "by_member"}
    ),
    # Gapless order: no two messages share a seq in a conversation.
    Index("messages", [("conversation_id", 1), ("seq", 1)], {"unique": True, "name": "conv_seq"}),
    # Exactly-once sends: one message per (sender, client_msg_id).
    Index("messages", [("dedup_key", 1)], {"unique": True, "name": "dedup"}),
    Index("messages", [("conversation_id", 1), ("updated_at", 1)], {"name": "conv_updated"}),
    Index("members", [("user_id", 1)], {"name": "by_user"}),
    Index("attachments", [("uploader_id", 1)], {"name": "by_uploader"}),
    Index("outbox", [("created_at", 1)], {"name": "created_at"}),
]
