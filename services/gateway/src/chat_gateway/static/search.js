// Finding people by username in the sidebar, and starting a direct chat with one.

import { api } from "./api.js";
import { toast } from "./dialogs.js";
import { $ } from "./dom.js";
import { openConversation } from "./navigation.js";
import { queryPresence } from "./people.js";
import { state, upsertConversation } from "./store.js";
import { render, ui } from "./view.js";

let searchTimer = 0;
let searchGeneration = 0;

export function setupSearch() {
  const input = $("#user-search");
  input.addEventListener("input", () => {
    ui.search.query = input.value;
    clearTimeout(searchTimer);
    if (!input.value.trim()) {
      resetSearch();
      return;
    }
    ui.search.loading = true;
    render();
    searchTimer = setTimeout(runSearch, 200);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") clearSearch();
    if (event.key === "Enter" && ui.search.results.length === 1) startDirect(ui.search.results[0]);
  });
}

async function runSearch() {
  const query = ui.search.query.trim().toLowerCase();
  const mine = ++searchGeneration;
  try {
    const { items } = await api.searchUsers(query, 20);
    if (mine !== searchGeneration) return;
    ui.search.results = (items ?? []).filter((user) => user.id !== state.me.id);
    ui.search.error = "";
    for (const user of ui.search.results) state.users.set(user.id, user);
  } catch (error) {
    if (mine !== searchGeneration) return;
    ui.search.results = [];
    ui.search.error = error.message;
  }
  ui.search.loading = false;
  render();
}

function resetSearch() {
  ui.search = { query: "", results: [], loading: false, error: "" };
  render();
}

function clearSearch() {
  $("#user-search").value = "";
  resetSearch();
}

/** Opens the direct chat with `user`, creating it if there is none yet. */
export async function startDirect(user) {
  state.users.set(user.id, user);
  clearSearch();
  const existing = [...state.conversations.values()].find(
    (thread) =>
      thread.conv.type === "direct" &&
      thread.conv.member_ids.includes(user.id) &&
      (user.id !== state.me.id || thread.conv.member_ids.every((id) => id === state.me.id)),
  );
  if (existing) {
    openConversation(existing.id);
    return;
  }
  try {
    const conversation = await api.createConversation({ type: "direct", member_ids: [user.id] });
    const thread = upsertConversation(conversation);
    queryPresence(thread.conv.member_ids, { force: true });
    openConversation(thread.id);
  } catch (error) {
    toast(error.message);
  }
}
