// Other people: their profiles, loaded on first sight, and their presence.

import { api } from "./api.js";
import { realtime } from "./realtime.js";
import { state } from "./store.js";
import { render } from "./view.js";

const userLoads = new Map();
let userLoadsActive = 0;
const userQueue = [];

/** Loads profiles of unknown users, four at a time, and re-renders as they come. */
export function ensureUsers(ids) {
  for (const id of ids) {
    if (!id || state.users.has(id) || userLoads.has(id)) continue;
    userLoads.set(id, true);
    userQueue.push(id);
  }
  pumpUsers();
}

function pumpUsers() {
  while (userLoadsActive < 4 && userQueue.length) {
    const id = userQueue.shift();
    userLoadsActive += 1;
    api
      .user(id)
      .then((user) => {
        state.users.set(user.id, user);
        render();
      })
      .catch(() => {
        setTimeout(() => userLoads.delete(id), 30_000); // try again later
      })
      .finally(() => {
        userLoadsActive -= 1;
        pumpUsers();
      });
  }
}

const presenceAsked = new Set();

/**
 * Asks for the presence of users not asked about yet. The server answers only
 * for users who let us see it (others look offline), and sends no event when
 * one starts to, so a new conversation asks again (`force`).
 */
export function queryPresence(ids, { force = false } = {}) {
  if (!realtime?.connected) return;
  const fresh = [...new Set(ids)].filter(
    (id) => id && id !== state.me.id && (force || !presenceAsked.has(id)),
  );
  for (let i = 0; i < fresh.length; i += 100) {
    const chunk = fresh.slice(i, i + 100);
    for (const id of chunk) presenceAsked.add(id);
    realtime
      .request("presence:query", { user_ids: chunk })
      .then((answer) => {
        for (const [id, presence] of Object.entries(answer.presence ?? {})) state.presence.set(id, presence);
        render();
      })
      .catch(() => {
        for (const id of chunk) presenceAsked.delete(id);
      });
  }
}

const presenceRechecked = new Set();

/**
 * Asks once more for the presence of someone who writes to us in a direct
 * conversation: their first message there may be what lets us see it (they
 * show it to those they have written to), and no event says so.
 */
export function recheckPresence(id) {
  if (presenceRechecked.has(id)) return;
  presenceRechecked.add(id);
  queryPresence([id], { force: true });
}

/** A new connection knows nothing of what the last one asked: ask everyone again. */
export function forgetPresenceQueries() {
  presenceAsked.clear();
  presenceRechecked.clear();
}

export function allMemberIds() {
  const ids = new Set();
  for (const thread of state.conversations.values()) for (const id of thread.conv.member_ids) ids.add(id);
  return [...ids];
}
