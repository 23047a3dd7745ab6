// The conversation list: its pages, loaded by REST as its end scrolls into
// view, and conversations leaving it.

import { api } from "./api.js";
import { toast } from "./dialogs.js";
import { $ } from "./dom.js";
import { allMemberIds, ensureUsers, queryPresence } from "./people.js";
import { flushDeliveredSoon } from "./receipts.js";
import { state, upsertConversation } from "./store.js";
import { render } from "./view.js";

let listLoading = false;
let listObserver = null;

export async function loadConversationPage() {
  if (listLoading || state.listCursor === null) return;
  listLoading = true;
  try {
    const page = await api.conversations(state.listCursor ?? undefined);
    for (const conversation of page.items ?? []) upsertConversation(conversation);
    state.listCursor = page.next_cursor ?? null;
    const members = allMemberIds();
    ensureUsers(members);
    queryPresence(members);
    flushDeliveredSoon();
  } finally {
    listLoading = false;
    render();
  }
  if (state.listCursor && listObserver) {
    // Observing afresh reports whether the end of the list is still in view.
    requestAnimationFrame(() => {
      listObserver.unobserve($("#list-sentinel"));
      listObserver.observe($("#list-sentinel"));
    });
  }
}

/** More conversations when the end of the list scrolls into view. */
export function loadPagesAsListScrolls() {
  listObserver = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting) && state.listCursor) {
      loadConversationPage().catch((error) => toast(error.message));
    }
  });
  listObserver.observe($("#list-sentinel"));
}

export function removeConversation(id) {
  const thread = state.conversations.get(id);
  if (!thread) return;
  state.conversations.delete(id);
  if (state.openId === id) {
    state.openId = null;
    history.replaceState(null, "", location.pathname);
  }
  render();
}
