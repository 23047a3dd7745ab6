// Catching up with the server: `sync` after every (re)connection and when an
// event shows a gap, REST for the gaps sync leaves, and older history page by
// page as it is scrolled to.

import { api } from "./api.js";
import { removeConversation } from "./conversations.js";
import { toast } from "./dialogs.js";
import { $ } from "./dom.js";
import { ensureUsers, queryPresence } from "./people.js";
import { realtime } from "./realtime.js";
import { flushDeliveredSoon } from "./receipts.js";
import { mergeMessage, openThread, state, upsertConversation } from "./store.js";
import { render } from "./view.js";

let syncRunning = null;
let syncAgain = false;
let lastSyncedAt = null;
const confirming = new Set(); // conversation ids being checked after a sync called them removed

// A catch-up that needs more answers than this (about this many times the
// server's answer size in messages) stops and resumes shortly from its cursors.
const MAX_ANSWERS_PER_SYNC = 200;

/**
 * `sync` with a cursor per conversation: the server answers with everything
 * after each cursor (edits and deletions included) and with conversations
 * this device does not know. Concurrent requests (a reconnection, a gap seen
 * in the events, the server's `sync:required`) collapse into one more run.
 */
export function requestSync() {
  if (syncRunning) {
    syncAgain = true;
    return syncRunning;
  }
  syncRunning = (async () => {
    try {
      do {
        syncAgain = false;
        await catchUp();
      } while (syncAgain);
    } catch (error) {
      // Resumed from the cursors reached so far; an overloaded server says when.
      const wait = Math.max(3, error?.details?.retry_after ?? 0) * 1000;
      if (realtime?.connected) setTimeout(() => requestSync(), wait);
      console.warn("sync failed", error);
    } finally {
      syncRunning = null;
      render();
    }
  })();
  return syncRunning;
}

let spreadTimer = 0;

/**
 * `requestSync` after a moment of this device's own choosing: a gateway asks
 * all of its sockets to sync at once (`sync:required`), and they should not
 * all ask the message service in the same instant.
 */
export function requestSyncSpread(spreadMs = 2000) {
  if (syncRunning) {
    syncAgain = true;
    return;
  }
  if (spreadTimer) return;
  spreadTimer = setTimeout(() => {
    spreadTimer = 0;
    requestSync();
  }, Math.random() * spreadMs);
}

/**
 * One catch-up, over as many answers as the server cuts it into: each
 * `complete: false` answer is followed at once by another call with the
 * cursors it moved and the same `since`; only the complete answer's
 * `synced_at` becomes the next `since` (CONTRACT §7.1, §7.5).
 */
async function catchUp() {
  // `since` asks for edits and deletions of messages already held, made
  // after the previous complete sync; the first sync follows a fresh REST load.
  const since = lastSyncedAt;
  let previousCursors = null;
  for (let answers = 0; answers < MAX_ANSWERS_PER_SYNC; answers++) {
    const cursors = currentCursors();
    const key = JSON.stringify(Object.entries(cursors).sort());
    // The server promises each cut answer moves something forward; if the
    // cursors did not move, asking again would only get the same answer.
    if (key === previousCursors) throw new Error("sync answer moved no cursor");
    previousCursors = key;
    const payload = since ? { cursors, since } : { cursors };
    const answer = await realtime.request("sync", payload, 20_000);
    applyAnswer(answer, cursors);
    if (answer.complete !== false) {
      if (answer.synced_at) lastSyncedAt = answer.synced_at;
      fillGaps();
      return;
    }
    render(); // what came so far shows while the rest is asked for
  }
  throw new Error(`sync still incomplete after ${MAX_ANSWERS_PER_SYNC} answers`);
}

function currentCursors() {
  const cursors = {};
  const recent = [...state.conversations.values()].sort((a, b) => b.activity - a.activity).slice(0, 1000);
  for (const thread of recent) cursors[thread.id] = thread.heldMax;
  return cursors;
}

/** Merges one sync answer; `cursors` are those the request carried. */
function applyAnswer(answer, cursors) {
  for (const id of answer.removed_conversation_ids ?? []) confirmRemoved(id);
  for (const entry of answer.conversations ?? []) {
    if (!entry?.conversation) continue;
    const conversation = entry.conversation;
    if (state.me && !(conversation.member_ids ?? []).includes(state.me.id)) {
      removeConversation(conversation.id);
      continue;
    }
    const known = state.conversations.has(conversation.id);
    const hadCursor = Object.hasOwn(cursors, conversation.id);
    const messages = (entry.messages ?? []).slice().sort((a, b) => a.seq - b.seq);
    const thread = upsertConversation(conversation);
    if (!known) {
      ensureUsers(thread.conv.member_ids);
      queryPresence(thread.conv.member_ids, { force: true });
    }
    if (entry.history_stale) {
      // More of what this device held changed than an answer carries: what
      // it holds is no longer to be trusted, so it is loaded afresh.
      reloadThread(thread);
      continue;
    }
    if (!hadCursor && messages.length && (!known || messages[0].seq > thread.heldMax + 1)) {
      // Without a cursor the answer holds the latest page, and `has_more`
      // means older history exists (loaded when scrolled to), not "ask again".
      thread.resetTo(messages[0].seq - 1);
    }
    for (const message of messages) mergeMessage(thread, message);
    if (hadCursor && entry.has_more && thread.id !== state.openId) {
      // Far behind in a conversation not on screen: skip ahead rather than
      // page through all of it now; its history loads when it is opened.
      thread.resetTo(Math.max(thread.heldMax, thread.conv.last_seq));
    }
    ensureUsers(messages.map((message) => message.sender_id));
  }
}

/** Drops the messages held of a conversation; the one on screen reloads its latest page. */
function reloadThread(thread) {
  thread.resetTo(Math.max(thread.heldMax, thread.conv.last_seq));
  if (thread.id === state.openId) loadHistory(thread);
}

/**
 * The server lists conversations it no longer returns; one that is merely
 * beyond its per-sync limit is not gone, so ask before dropping it.
 */
function confirmRemoved(id) {
  if (confirming.has(id)) return;
  confirming.add(id);
  api
    .conversation(id)
    .then(
      (conversation) => {
        if (conversation.member_ids?.includes(state.me.id)) upsertConversation(conversation);
        else removeConversation(id);
        render();
      },
      (error) => {
        if (error.status === 404 || error.status === 403) removeConversation(id);
      },
    )
    .finally(() => confirming.delete(id));
}

/** Gaps that sync did not fill (a message past one, and no more to sync) come by REST. */
function fillGaps() {
  for (const thread of state.conversations.values()) {
    const beyond = [...thread.messages.keys()].some((seq) => seq > thread.heldMax + 1);
    if (!beyond || thread.gapLoading) continue;
    thread.gapLoading = true;
    api
      .messages(thread.id, { after_seq: thread.heldMax, limit: 200 })
      .then((page) => {
        for (const message of page.items ?? []) mergeMessage(thread, message);
        flushDeliveredSoon();
        render();
      })
      .catch(() => {})
      .finally(() => {
        thread.gapLoading = false;
      });
  }
}

// ---------------------------------------------------------------- history

export async function loadHistory(thread) {
  if (thread.historyLoading || !thread.hasMoreBefore) return;
  thread.historyLoading = true;
  render();
  const resets = thread.resets;
  try {
    const page = await api.messages(thread.id, { before_seq: thread.loadedMin, limit: 50 });
    // Dropped meanwhile (a stale history): this page belongs to what was dropped.
    if (thread.resets !== resets) return;
    const items = page.items ?? [];
    for (const message of items) mergeMessage(thread, message, { history: true });
    thread.hasMoreBefore = Boolean(page.has_more) && items.length > 0 && thread.loadedMin > 1;
    ensureUsers(items.map((message) => message.sender_id));
  } catch (error) {
    toast(`Could not load earlier messages: ${error.message}`);
  } finally {
    thread.historyLoading = false;
    if (thread.resets !== resets && thread.id === state.openId) loadHistory(thread);
    render();
  }
}

/** Keeps loading older messages while they do not fill the view. */
export function maybeLoadMoreHistory() {
  const thread = openThread();
  if (!thread || thread.historyLoading || !thread.hasMoreBefore) return;
  const scroller = $("#messages");
  if (scroller.scrollTop < 200 || scroller.scrollHeight <= scroller.clientHeight) loadHistory(thread);
}
