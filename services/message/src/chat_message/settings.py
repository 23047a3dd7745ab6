"""Settings of the message service."""

from __future__ import annotations

from chat_platform.ratelimit import Rate
from chat_platform.settings import PlatformSettings, RateSetting


class MessageSettings(PlatformSettings):
    # A database of its own (CONTRACT §7.5): nothing of auth's, password hashes above all.
    mongodb_db: str = "chat_message"
    max_text_chars: int = 4000
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_group_members: int = 256
    max_attachments_per_message: int = 10
    # Bytes of attachments one user may hold (deleted and unused ones do not count).
    upload_quota_bytes: int = 1024 * 1024 * 1024
    # Uploads in progress at once; beyond, refused at once, before the body is read.
    max_uploads_per_user: int = 2
    max_uploads_per_instance: int = 16
    # An attachment no message references is removed after this long (time enough to send
    # the message it was uploaded for), by a sweep run every `attachment_gc_every_seconds`.
    attachment_gc_grace_seconds: float = 24 * 3600
    attachment_gc_every_seconds: float = 600
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

    # Per-user budgets of the REST-only actions (events per second, burst); sends spend the
    # socket's `message:send`, and anything unnamed the platform's default.
    rate_edit: RateSetting = Rate(5.0, 30)
    rate_delete: RateSetting = Rate(5.0, 30)
    rate_create_conversation: RateSetting = Rate(1.0, 20)
    rate_members: RateSetting = Rate(2.0, 30)
    rate_upload: RateSetting = Rate(1.0, 10)
    rate_history: RateSetting = Rate(10.0, 60)

    def budget_rates(self) -> dict[str, Rate]:
        return {
            **super().budget_rates(),
            "message:edit": self.rate_edit,
            "message:delete": self.rate_delete,
            "conversation:create": self.rate_create_conversation,
            "conversation:members": self.rate_members,
            "attachment:upload": self.rate_upload,
            "messages:history": self.rate_history,
        }
