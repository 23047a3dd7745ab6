"""Settings of the message service."""

from __future__ import annotations

from chat_platform.settings import PlatformSettings


class MessageSettings(PlatformSettings):
    max_text_chars: int = 4000
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_group_members: int = 256
    max_attachments_per_message: int = 10
    send_batch_max: int = 256
    cursor_batch_max: int = 512
    # Writes waiting for their group commit; beyond it a write is answered `unavailable` at
    # once rather than queued behind seconds of work.
    max_waiting_writes: int = 4096
    # Catch-up reads (sync, member lookups) handled at once per instance; each sync can be
    # large, so fewer than the writes' command prefetch.
    read_prefetch: int = 32
    sync_messages_per_conversation: int = 100
    sync_max_conversations: int = 200
    # One sync answer carries at most this many messages and bytes of them (CONTRACT §7.1).
    sync_max_messages: int = 500
    sync_max_bytes: int = 1024 * 1024
    # A killed process's open transactions block what they touched until the server reaps
    # them (60 s); live processes abort them once its heartbeat has stopped this long.
    session_heartbeat_seconds: float = 1.0
    session_dead_after_seconds: float = 5.0
