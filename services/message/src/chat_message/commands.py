"""The gateways' commands, answered by the same use cases as the REST routes."""

from __future__ import annotations

from chat_contracts.commands import (
    Contacts,
    ConversationMembers,
    CursorMoved,
    Members,
    MessageSent,
    MoveCursor,
    PresenceAudience,
    SendMessage,
    Sync,
    SyncResult,
    UserContacts,
    VisiblePresence,
)
from chat_message.cursors.rules import CursorMove
from chat_message.services import MessageServices
from chat_message.store import Store
from chat_platform.amqp import CommandHandlers


def command_handlers(services: MessageServices, store: Store) -> CommandHandlers:
    async def send(command: SendMessage) -> MessageSent:
        request = command.request
        result = await services.messages.send(command.sender_id, request.conversation_id, request)
        return MessageSent(message=result.message, created=result.created)

    async def move_cursor(command: MoveCursor) -> CursorMoved:
        move = CursorMove(command.user_id, command.conversation_id, command.seq, command.kind)
        return CursorMoved(moved=await services.cursors.move(move))

    async def sync(command: Sync) -> SyncResult:
        return await services.sync.sync(command.user_id, command.request)

    async def members(command: ConversationMembers) -> Members:
        doc = await store.conversation_for_member(command.conversation_id, command.user_id)
        return Members(member_ids=doc["member_ids"])

    async def presence_audience(command: PresenceAudience) -> Contacts:
        return Contacts(user_ids=await services.consent.presence_audience(command.user_id))

    async def visible_presence(command: VisiblePresence) -> Contacts:
        visible = await services.consent.visible_presence(command.viewer_id, command.user_ids)
        return Contacts(user_ids=visible)

    # Superseded by the two presence commands (it ignores blocks and settings); answered
    # until every gateway has moved to them.
    async def contacts(command: UserContacts) -> Contacts:
        ids = await store.conversations.distinct("member_ids", {"member_ids": command.user_id})
        return Contacts(user_ids=sorted(i for i in ids if i != command.user_id))

    return (
        CommandHandlers()
        .add(SendMessage, send)
        .add(MoveCursor, move_cursor)
        .add(Sync, sync)
        .add(ConversationMembers, members)
        .add(UserContacts, contacts)
        .add(PresenceAudience, presence_audience)
        .add(VisiblePresence, visible_presence)
    )
