// Which conversation is on screen: its address (#/c/<id>) in the browser's
// history, what opening one sets going, and jumps to a quoted message.

import { api } from "./api.js";
import { restoreDraft, saveDraft, stopTypingSignal } from "./composer.js";
import { toast } from "./dialogs.js";
import { $ } from "./dom.js";
import { ensureUsers, queryPresence } from "./people.js";
import { openThread, state, upsertConversation } from "./store.js";
import { loadHistory } from "./sync.js";
import { render, ui } from "./view.js";

export function openConversation(id) {
  const url = `#/c/${encodeURIComponent(id)}`;
  if (state.openId) history.replaceState({ chat: id, pushed: history.state?.pushed }, "", url);
  else history.pushState({ chat: id, pushed: true }, "", url);
  showConversation(id);
}

export function goBack() {
  if (history.state?.pushed) history.back();
  else {
    history.replaceState(null, "", location.pathname);
    showConversation(null);
  }
}

/** Shows the conversation the address names (at start-up, and on back and forward). */
export async function applyRoute() {
  const match = location.hash.match(/^#\/c\/(.+)$/);
  const id = match ? decodeURIComponent(match[1]) : null;
  if (id && !state.conversations.has(id)) {
    try {
      upsertConversation(await api.conversation(id));
    } catch {
      history.replaceState(null, "", location.pathname);
      showConversation(null);
      return;
    }
  }
  showConversation(id);
}

function showConversation(id) {
  const previous = openThread();
  if (previous && previous.id !== id) {
    saveDraft(previous);
    stopTypingSignal();
    previous.unreadMarker = null;
  }
  state.openId = id;
  ui.selectedKey = null;
  const thread = id ? state.conversations.get(id) : null;
  if (thread && previous !== thread) {
    thread.unreadMarker = thread.unread > 0 ? thread.conv.read_seq + 1 : null;
    ensureUsers(thread.conv.member_ids);
    queryPresence(thread.conv.member_ids);
    restoreDraft(thread);
    if (thread.visibleMessages().length < 30 && thread.hasMoreBefore) loadHistory(thread);
    if (!matchMedia("(hover: none)").matches) $("#message-input").focus({ preventScroll: true });
  }
  render();
}

export function jumpTo(messageId) {
  const target = document.querySelector(`#message-items [data-id="${CSS.escape(messageId)}"]`);
  if (!target) {
    toast("That message is further back in the history.", { kind: "info" });
    return;
  }
  target.scrollIntoView({ block: "center", behavior: "smooth" });
  target.classList.add("flash");
  setTimeout(() => target.classList.remove("flash"), 1500);
}
