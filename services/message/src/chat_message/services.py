"""The message service's use cases, as the composition root builds them for REST and commands."""

from __future__ import annotations

from dataclasses import dataclass

from chat_message.attachments.service import Attachments
from chat_message.consent import Consent
from chat_message.conversations.service import Conversations
from chat_message.cursors.service import Cursors
from chat_message.messages.service import Messages
from chat_message.sync.service import Sync


@dataclass(frozen=True)
class MessageServices:
    conversations: Conversations
    messages: Messages
    cursors: Cursors
    sync: Sync
    attachments: Attachments
    consent: Consent
