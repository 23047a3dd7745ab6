// What the client holds: conversations, their messages, receipts, presence
// and typing, and the rules that merge what the server sends into it.
//
// Events may arrive twice, late or out of order; the merge functions make the
// screen show every message exactly once, in seq order, in its latest state.

import { toDate } from "./format.js";

export const state = {
  me: null,
  users: new Map(), // id -> user
  conversations: new Map(), // id -> Thread
  presence: new Map(), // user id -> {online, last_seen}
  openId: null,
  connection: "idle",
  listCursor: undefined, // undefined: first page not loaded; null: no more pages
};

/**
 * One conversation on this device.
 *
 * `heldMax` is the cursor given to `sync`: every seq up to it is either held
 * or deliberately not loaded yet (older history, fetched on scroll). The
 * messages held form the contiguous block `loadedMin..heldMax`, plus any that
 * arrived past a gap, waiting for the gap to be filled.
 */
export class Thread {
  constructor(conversation) {
    this.conv = normaliseConversation(conversation);
    this.messages = new Map(); // seq -> message
    this.seqOf = new Map(); // message id -> seq
    this.pending = new Map(); // client_msg_id -> local echo not yet stored
    this.receipts = new Map(); // user id -> {delivered, read}
    this.typing = new Map(); // user id -> expiry timer
    this.historyLoading = false;
    this.deliveredSent = 0;
    this.readSent = this.conv.read_seq;
    this.unreadMarker = null;
    this.draft = { text: "", files: [], mode: null };
    this.resets = 0; // lets a history load in flight know the messages it extends were dropped
    this.resetTo(this.conv.last_seq);
    if (this.conv.last_message) this.noteSender(this.conv.last_message);
  }

  /** Forget held messages; consider everything up to `seq` known (history loads on demand). */
  resetTo(seq) {
    this.resets += 1;
    this.messages.clear();
    this.seqOf.clear();
    this.heldMax = seq;
    this.loadedMin = seq + 1;
    this.hasMoreBefore = seq > 0;
  }

  get id() {
    return this.conv.id;
  }

  /** Held messages from the loaded block on, ascending by seq. */
  visibleMessages() {
    return [...this.messages.values()]
      .filter((message) => message.seq >= this.loadedMin)
      .sort((a, b) => a.seq - b.seq);
  }

  get activity() {
    const stamp = this.conv.last_message?.created_at ?? this.conv.updated_at ?? this.conv.created_at;
    return toDate(stamp)?.getTime() ?? 0;
  }

  /** Sending or reading a message means having everything up to it. */
  noteSender(message) {
    this.noteReceipt(message.sender_id, "read", message.seq);
  }

  noteReceipt(userId, kind, seq) {
    const current = this.receipts.get(userId) ?? { delivered: 0, read: 0 };
    const next = { ...current };
    if (kind === "read") next.read = Math.max(next.read, seq);
    next.delivered = Math.max(next.delivered, next.read, kind === "delivered" ? seq : 0);
    if (next.read === current.read && next.delivered === current.delivered) return false;
    this.receipts.set(userId, next);
    return true;
  }

  /** "sent", "delivered" (to every other member) or "read" (by every other member). */
  statusOf(seq, myId) {
    const others = this.conv.member_ids.filter((id) => id !== myId);
    if (others.length === 0) return "sent";
    let delivered = true;
    for (const id of others) {
      const receipt = this.receipts.get(id);
      if (!receipt || receipt.read < seq) {
        if (!receipt || receipt.delivered < seq) return "sent";
        delivered = false;
      }
    }
    return delivered ? "read" : "delivered";
  }

  get unread() {
    return Math.max(0, this.conv.unread_count ?? 0);
  }
}

function normaliseConversation(conversation) {
  return {
    ...conversation,
    member_ids: conversation.member_ids ?? [],
    last_seq: conversation.last_seq ?? 0,
    read_seq: conversation.read_seq ?? 0,
    unread_count: conversation.unread_count ?? 0,
    last_message: conversation.last_message ?? null,
  };
}

/** Of two states of one message, the later: a deletion is final, then the later edit. */
export function newerOf(current, incoming) {
  if (!current) return incoming;
  if (current.deleted) return current;
  if (incoming.deleted) return incoming;
  const a = toDate(current.edited_at)?.getTime() ?? 0;
  const b = toDate(incoming.edited_at)?.getTime() ?? 0;
  return b > a ? incoming : current;
}

/**
 * Adds or updates a conversation. `perUser` says whether its read_seq and
 * unread_count are the caller's (REST and sync answers) or absent (the
 * `conversation:updated` event, which carries no per-user fields).
 */
export function upsertConversation(conversation, { perUser = true } = {}) {
  let thread = state.conversations.get(conversation.id);
  if (!thread) {
    const fresh = normaliseConversation(conversation);
    if (!perUser) {
      fresh.read_seq = 0;
      fresh.unread_count = 0;
    }
    thread = new Thread(fresh);
    state.conversations.set(thread.id, thread);
    return thread;
  }
  const old = thread.conv;
  const next = { ...old, ...normaliseConversation(conversation) };
  if (old.last_seq > next.last_seq) {
    // An older snapshot than what events already told us.
    next.last_seq = old.last_seq;
    next.last_message = old.last_message;
    next.updated_at = old.updated_at;
  } else if (old.last_message && next.last_message?.id === old.last_message.id) {
    next.last_message = newerOf(old.last_message, next.last_message);
  } else if (!next.last_message) {
    next.last_message = old.last_message;
  }
  const fresher =
    perUser &&
    conversation.read_seq != null &&
    conversation.read_seq >= old.read_seq &&
    (conversation.last_seq ?? 0) >= old.last_seq;
  if (fresher) {
    next.read_seq = conversation.read_seq;
    next.unread_count = conversation.unread_count ?? Math.max(0, next.last_seq - next.read_seq);
  } else {
    next.read_seq = old.read_seq;
    next.unread_count = old.unread_count;
  }
  thread.conv = next;
  if (next.last_message) thread.noteSender(next.last_message);
  return thread;
}

/**
 * Merges one message. Returns what changed: "none", "updated" (a message held
 * already), "added", or "skipped" (older than the loaded history; the REST
 * history load will bring its current state when it is scrolled to).
 */
export function mergeMessage(thread, message, { history = false } = {}) {
  const myId = state.me?.id;
  if (message.sender_id === myId && thread.pending.has(message.client_msg_id)) {
    thread.pending.delete(message.client_msg_id);
  }
  const conv = thread.conv;
  if (conv.last_message?.id === message.id) conv.last_message = newerOf(conv.last_message, message);

  const heldSeq = thread.seqOf.get(message.id);
  if (heldSeq != null) {
    const current = thread.messages.get(heldSeq);
    const next = newerOf(current, message);
    if (next === current) return "none";
    thread.messages.set(heldSeq, next);
    return "updated";
  }
  if (message.seq < thread.loadedMin && !history) return "skipped";

  const other = thread.messages.get(message.seq);
  if (other) thread.seqOf.delete(other.id); // the server's word for a seq wins
  thread.messages.set(message.seq, message);
  thread.seqOf.set(message.id, message.seq);
  if (history) {
    thread.loadedMin = Math.min(thread.loadedMin, message.seq);
  }
  while (thread.messages.has(thread.heldMax + 1)) thread.heldMax += 1;

  if (message.seq > conv.last_seq) {
    const fromOther = message.sender_id !== myId;
    conv.last_seq = message.seq;
    conv.last_message = message;
    conv.updated_at = message.created_at;
    if (fromOther) {
      conv.unread_count = Math.max(0, conv.unread_count) + 1;
    } else {
      // The server counts one's own messages as read.
      conv.read_seq = message.seq;
      conv.unread_count = 0;
    }
  }
  thread.noteSender(message);
  stopTyping(thread, message.sender_id);
  return "added";
}

export function stopTyping(thread, userId) {
  const timer = thread.typing.get(userId);
  if (timer === undefined) return false;
  clearTimeout(timer);
  thread.typing.delete(userId);
  return true;
}

/** The conversation on screen, or null. */
export function openThread() {
  return state.openId ? state.conversations.get(state.openId) : null;
}

/** Conversations by most recent activity. */
export function sortedThreads() {
  return [...state.conversations.values()].sort((a, b) => b.activity - a.activity);
}

export function otherMembers(thread) {
  return thread.conv.member_ids.filter((id) => id !== state.me?.id);
}

export function userName(id) {
  if (id === state.me?.id) return state.me.display_name || state.me.username;
  const user = state.users.get(id);
  return user ? user.display_name || user.username : "…";
}

export function firstName(id) {
  return userName(id).split(/\s+/)[0];
}

export function threadTitle(thread) {
  const conv = thread.conv;
  if (conv.type === "group") {
    if (conv.title) return conv.title;
    return otherMembers(thread).map(firstName).join(", ") || "Group";
  }
  const [other] = otherMembers(thread);
  return other ? userName(other) : `${userName(state.me?.id)} (you)`;
}

export function directPeer(thread) {
  return thread.conv.type === "direct" ? (otherMembers(thread)[0] ?? null) : null;
}

// ---------------------------------------------------- receipts cache
// The contract's conversation carries no per-member cursors, so the device
// remembers the receipts it saw (they only ever move forward).

function receiptsKey() {
  return `chat.receipts.${state.me?.id}`;
}

export function loadReceipts() {
  try {
    const saved = JSON.parse(localStorage.getItem(receiptsKey()) || "{}");
    for (const [conversationId, users] of Object.entries(saved)) {
      const thread = state.conversations.get(conversationId);
      if (!thread) continue;
      for (const [userId, [delivered, read]] of Object.entries(users)) {
        thread.noteReceipt(userId, "delivered", delivered);
        thread.noteReceipt(userId, "read", read);
      }
    }
  } catch {
    // a damaged cache is only a cache
  }
}

let saveTimer = 0;
export function saveReceiptsSoon() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => {
    const out = {};
    for (const thread of state.conversations.values()) {
      const users = {};
      for (const [userId, r] of thread.receipts) {
        if (userId !== state.me?.id) users[userId] = [r.delivered, r.read];
      }
      if (Object.keys(users).length) out[thread.id] = users;
    }
    try {
      localStorage.setItem(receiptsKey(), JSON.stringify(out));
    } catch {
      // storage full: receipts will come again from events
    }
  }, 500);
}
