// What the server pushes (new and changed messages, receipts, typing,
// presence, membership, requests to catch up), merged into the state. Events
// may come twice, late or out of order: store.js's merge rules make that
// harmless.

import { api } from "./api.js";
import { removeConversation } from "./conversations.js";
import { toast } from "./dialogs.js";
import { $ } from "./dom.js";
import { ensureUsers, queryPresence, recheckPresence } from "./people.js";
import { flushDeliveredSoon } from "./receipts.js";
import { mergeMessage, saveReceiptsSoon, state, stopTyping, upsertConversation } from "./store.js";
import { requestSync, requestSyncSpread } from "./sync.js";
import { render, ui } from "./view.js";

const TYPING_SHOWN_MS = 5_000;

/** `infoDialog` is refreshed when the conversation it shows changes. */
export function handleServerEvent(name, payload, { infoDialog }) {
  if (!payload || typeof payload !== "object") return;
  switch (name) {
    case "message:new":
      onMessage(payload);
      break;
    case "message:updated":
    case "message:deleted":
      onMessageChanged(payload);
      break;
    case "receipt":
      onReceipt(payload);
      break;
    case "typing":
      onTyping(payload);
      break;
    case "presence":
      state.presence.set(payload.user_id, { online: payload.online, last_seen: payload.last_seen });
      break;
    case "conversation:updated":
      onConversationUpdated(payload, infoDialog);
      break;
    case "sync:required":
      // The gateway may have lost events meant for this device (whatever the
      // reason it gives): catch up as after a reconnection.
      requestSyncSpread();
      return;
    default:
      return;
  }
  render();
}

/** A stored message, from its event or from the acknowledgement of one's own send. */
export function onMessage(message) {
  const thread = state.conversations.get(message.conversation_id);
  if (!thread) {
    requestSync(); // a conversation this device has not seen yet
    return;
  }
  const result = mergeMessage(thread, message);
  if (message.seq > thread.heldMax + 1) requestSync(); // missed one: catch up
  if (result === "added") {
    ensureUsers([message.sender_id]);
    if (thread.conv.type === "direct" && message.sender_id !== state.me.id) recheckPresence(message.sender_id);
    flushDeliveredSoon();
    if (message.sender_id === state.me.id && thread.id === state.openId) ui.stickToBottom = true;
    saveReceiptsSoon();
  }
}

function onMessageChanged(message) {
  const thread = state.conversations.get(message.conversation_id);
  if (!thread) return;
  mergeMessage(thread, message);
  const mode = thread.draft.mode;
  if (message.deleted && mode?.message.id === message.id) {
    thread.draft.mode = null;
    if (mode.kind === "edit" && thread.id === state.openId) $("#message-input").value = "";
  }
}

function onReceipt({ conversation_id: conversationId, user_id: userId, kind, seq }) {
  const thread = state.conversations.get(conversationId);
  if (!thread || !Number.isInteger(seq)) return;
  if (thread.noteReceipt(userId, kind, seq)) saveReceiptsSoon();
  if (userId === state.me.id && kind === "read" && seq > thread.conv.read_seq) {
    // Read on another of my devices.
    thread.conv.read_seq = seq;
    thread.readSent = Math.max(thread.readSent, seq);
    thread.conv.unread_count = Math.max(0, thread.conv.last_seq - seq);
  }
}

function onTyping({ conversation_id: conversationId, user_id: userId, is_typing: isTyping }) {
  const thread = state.conversations.get(conversationId);
  if (!thread || userId === state.me.id) return;
  stopTyping(thread, userId);
  if (isTyping) {
    thread.typing.set(
      userId,
      setTimeout(() => {
        thread.typing.delete(userId);
        render();
      }, TYPING_SHOWN_MS),
    );
    ensureUsers([userId]);
  }
}

function onConversationUpdated(conversation, infoDialog) {
  if (!conversation.id) return;
  if (!(conversation.member_ids ?? []).includes(state.me.id)) {
    const thread = state.conversations.get(conversation.id);
    if (thread) {
      if (state.openId === conversation.id) toast(`You are no longer in “${conversation.title || "this conversation"}”.`, { kind: "info" });
      removeConversation(conversation.id);
    }
    return;
  }
  const before = state.conversations.get(conversation.id)?.conv.member_ids ?? [];
  const known = state.conversations.has(conversation.id);
  upsertConversation(conversation, { perUser: false });
  ensureUsers(conversation.member_ids);
  // New contacts: their presence is visible to us only from now on.
  const joined = conversation.member_ids.filter((id) => !before.includes(id));
  queryPresence(joined, { force: true });
  if (infoDialog.openFor === conversation.id) infoDialog.refresh();
  if (!known) {
    // The event has no per-user fields (unread count); the REST view has.
    api
      .conversation(conversation.id)
      .then((full) => {
        upsertConversation(full);
        render();
      })
      .catch(() => {});
  }
}
