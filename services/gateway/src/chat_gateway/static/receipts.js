// The receipts this device sends: delivered (it holds the messages) and read
// (the person has them on screen).

import { $ } from "./dom.js";
import { realtime } from "./realtime.js";
import { openThread, state } from "./store.js";
import { messagesNearBottom, render } from "./view.js";

let deliveredTimer = 0;

/** Tells the server this device holds everything up to each conversation's cursor. */
export function flushDeliveredSoon() {
  clearTimeout(deliveredTimer);
  deliveredTimer = setTimeout(() => {
    if (!realtime?.connected) return;
    for (const thread of state.conversations.values()) {
      const seq = thread.heldMax;
      if (seq <= thread.deliveredSent || seq <= thread.conv.read_seq) continue;
      const sent = thread.deliveredSent;
      thread.deliveredSent = seq;
      realtime.request("message:delivered", { conversation_id: thread.id, seq }).catch(() => {
        thread.deliveredSent = sent;
      });
    }
  }, 120);
}

/** Marks the open conversation read when it is on screen and scrolled to the end. */
export function maybeMarkRead(force = false) {
  const thread = openThread();
  if (!thread || !realtime?.connected || document.hidden || !document.hasFocus()) return;
  if ($("#chat-main").hidden || !messagesNearBottom()) return;
  const seq = thread.heldMax;
  if (seq <= 0 || (thread.loadedMin > seq && thread.messages.size === 0)) return;
  if (!force && seq <= thread.readSent && thread.conv.unread_count === 0) return;
  if (seq <= thread.readSent && seq <= thread.conv.read_seq) {
    thread.conv.unread_count = 0;
    return;
  }
  const previous = thread.readSent;
  thread.readSent = seq;
  thread.conv.read_seq = Math.max(thread.conv.read_seq, seq);
  thread.conv.unread_count = 0;
  realtime.request("conversation:read", { conversation_id: thread.id, seq }).catch(() => {
    thread.readSent = previous;
  });
  render();
}

/** After a reconnect: what the old connection sent may not have arrived, so send the latest again. */
export function resendReceipts() {
  for (const thread of state.conversations.values()) thread.deliveredSent = Math.min(thread.deliveredSent, thread.heldMax - 1);
  flushDeliveredSoon();
  maybeMarkRead(true);
}
