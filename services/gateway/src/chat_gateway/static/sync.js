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

/**
 * `sync` with a cursor per conversation: the server answers with everything
 * after each cursor (edits and deletions included) and with conversations
 * this device does not know. Concurrent requests collapse into one more run.
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
        await syncRounds();
      } while (syncAgain);
    } catch (error) {
      if (realtime?.connected) setTimeout(() => requestSync(), 3000);
      console.warn("sync failed", error);
    } finally {
      syncRunning = null;
      render();
    }
  })();
  return syncRunning;
}

async function syncRounds() {
  // `since` asks for edits and deletions of messages already held, made
  // after the previous sync; the first sync follows a fresh REST load.
  const since = lastSyncedAt;
  let syncedAt = null;
  for (let round = 0; round < 20; round++) {
    const cursors = {};
    const recent = [...state.conversations.values()].sort((a, b) => b.activity - a.activity).slice(0, 1000);
    for (const thread of recent) cursors[thread.id] = thread.heldMax;
    const payload = since ? { cursors, since } : { cursors };
    const answer = await realtime.request("sync", payload, 20_000);
    syncedAt ??= answer.synced_at ?? null;
    for (const id of answer.removed_conversation_ids ?? []) confirmRemoved(id);
    let more = false;
    for (const entry of answer.conversations ?? []) {
      if (!entry?.conversation) continue;
      const conversation = entry.conversation;
      if (state.me && !(conversation.member_ids ?? []).includes(state.me.id)) {
        removeConversation(conversation.id);
        continue;
      }
      const known = state.conversations.get(conversation.id);
      const messages = (entry.messages ?? []).slice().sort((a, b) => a.seq - b.seq);
      const thread = upsertConversation(conversation);
      if (!known) {
        // New to this device: the answer holds its latest page, and
        // `has_more` says older history exists (loaded when scrolled to).
        if (messages.length) {
          thread.resetTo(messages[0].seq - 1);
          for (const message of messages) mergeMessage(thread, message);
          thread.hasMoreBefore = messages[0].seq > 1;
        }
        ensureUsers([...thread.conv.member_ids, ...messages.map((message) => message.sender_id)]);
        queryPresence(thread.conv.member_ids, { force: true });
        continue;
      }
      for (const message of messages) mergeMessage(thread, message);
      if (entry.has_more) {
        if (thread.id === state.openId) more = true;
        else thread.resetTo(Math.max(thread.heldMax, thread.conv.last_seq)); // skip ahead; history loads on open
      }
      ensureUsers(messages.map((message) => message.sender_id));
    }
    fillGaps();
    if (!more) break;
  }
  if (syncedAt) lastSyncedAt = syncedAt;
}

/**
 * The server lists conversations it no longer returns; one that is merely
 * beyond its per-sync limit is not gone, so ask before dropping it.
 */
function confirmRemoved(id) {
  api.conversation(id).then(
    (conversation) => {
      if (conversation.member_ids?.includes(state.me.id)) upsertConversation(conversation);
      else removeConversation(id);
      render();
    },
    (error) => {
      if (error.status === 404 || error.status === 403) removeConversation(id);
    },
  );
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
  try {
    const page = await api.messages(thread.id, { before_seq: thread.loadedMin, limit: 50 });
    const items = page.items ?? [];
    for (const message of items) mergeMessage(thread, message, { history: true });
    thread.hasMoreBefore = Boolean(page.has_more) && items.length > 0 && thread.loadedMin > 1;
    ensureUsers(items.map((message) => message.sender_id));
  } catch (error) {
    toast(`Could not load earlier messages: ${error.message}`);
  } finally {
    thread.historyLoading = false;
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
