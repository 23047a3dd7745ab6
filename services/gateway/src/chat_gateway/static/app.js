// The web client: wires the session, the REST API and the Socket.IO
// connection to the state and the view.

import { api, events as authEvents, loadConfig, scheduleRefresh, session } from "./api.js";
import { rememberLocalFile } from "./attachments.js";
import { confirmDialog, setupGroupDialog, setupInfoDialog, toast } from "./dialogs.js";
import { $, icon } from "./dom.js";
import { createRealtime } from "./realtime.js";
import {
  loadReceipts,
  mergeMessage,
  saveReceiptsSoon,
  state,
  stopTyping,
  upsertConversation,
} from "./store.js";
import {
  messagesNearBottom,
  renderBanner,
  renderChat,
  renderJumpButton,
  renderSidebar,
  ui,
} from "./view.js";

const SEND_TIMEOUT_MS = 15_000;
const BUSY_RETRIES = 3; // sends shed under load are retried this often, as the server advises
const TYPING_RENEW_MS = 2_500;
const TYPING_IDLE_MS = 3_000;
const TYPING_SHOWN_MS = 5_000;
const SIGNED_OUT_NOTE = "chat.signed_out_note";

let realtime = null;
let groupDialog = null;
let infoDialog = null;

// ================================================================= boot

boot();

async function boot() {
  await loadConfig();
  decorateStaticButtons();
  authEvents.addEventListener("signedout", () => signOutLocally("Your session has ended. Please sign in again."));
  authEvents.addEventListener("tokens", (event) => realtime?.updateToken(event.detail));
  if (session.signedIn) await startApp();
  else showAuth();
}

function decorateStaticButtons() {
  $("#new-group").append(icon("group"));
  $("#sign-out").append(icon("logout"));
  $(".search-icon").append(icon("search", { size: 18 }));
  $("#back-button").append(icon("back"));
  $("#info-button").append(icon("info"));
  $("#attach-button").append(icon("clip"));
  $("#send-button").append(icon("send"));
  $("#context-cancel").append(icon("close", { size: 18 }));
}

function hideSplash() {
  $("#splash").hidden = true;
}

// ================================================================= sign in / register

function showAuth() {
  hideSplash();
  $("#app").hidden = true;
  $("#auth-screen").hidden = false;
  const form = $("#auth-form");
  const note = sessionStorage.getItem(SIGNED_OUT_NOTE);
  sessionStorage.removeItem(SIGNED_OUT_NOTE);
  setAuthMode("login");
  if (note) showAuthError(note);
  $("#tab-login").onclick = () => setAuthMode("login");
  $("#tab-register").onclick = () => setAuthMode("register");
  form.onsubmit = submitAuth;
  $("#auth-username").focus();
}

function setAuthMode(mode) {
  const form = $("#auth-form");
  form.dataset.mode = mode;
  const register = mode === "register";
  $("#tab-login").setAttribute("aria-selected", String(!register));
  $("#tab-register").setAttribute("aria-selected", String(register));
  for (const el of form.querySelectorAll("[data-register-only]")) el.hidden = !register;
  $("#auth-title").textContent = register ? "Create your account" : "Welcome back";
  $("#auth-lead").textContent = register
    ? "Pick a username people can find you by."
    : "Sign in to continue your conversations.";
  $("#auth-submit").textContent = register ? "Create account" : "Sign in";
  $("#auth-password").autocomplete = register ? "new-password" : "current-password";
  $("#auth-error").hidden = true;
}

function showAuthError(message) {
  const box = $("#auth-error");
  box.textContent = message;
  box.hidden = false;
}

const FIELD_NAMES = { username: "Username", password: "Password", email: "Email", display_name: "Display name" };

/** The contract's error message, with field details for validation errors. */
function describeError(error) {
  let text = error.message;
  const details = error.details;
  const items = Array.isArray(details) ? details : Array.isArray(details?.fields) ? details.fields : [];
  if (error.code === "validation_error" && items.length) {
    const fields = items
      .slice(0, 3)
      .map((item) => {
        const field = Array.isArray(item.loc)
          ? item.loc.filter((part) => part !== "body").join(".")
          : item.field;
        const problem = item.problem ?? item.msg ?? item.message;
        return [FIELD_NAMES[field] ?? field, problem].filter(Boolean).join(": ");
      })
      .filter(Boolean);
    if (fields.length) text = `${text} ${fields.join("; ")}.`;
  }
  if (error.code === "rate_limited" && details?.retry_after) {
    text += ` Try again in ${Math.ceil(details.retry_after)} s.`;
  }
  return text;
}

async function submitAuth(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const register = form.dataset.mode === "register";
  const username = $("#auth-username").value.trim();
  const password = $("#auth-password").value;
  $("#auth-error").hidden = true;
  if (!username || !password) {
    showAuthError("Enter a username and a password.");
    return;
  }
  const body = { username, password };
  if (register) {
    const displayName = $("#auth-display-name").value.trim();
    const email = $("#auth-email").value.trim();
    if (displayName) body.display_name = displayName;
    if (email) body.email = email;
  }
  const button = $("#auth-submit");
  button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    const answer = register ? await api.register(body) : await api.login(body);
    session.save(answer);
    $("#auth-password").value = "";
    await startApp();
  } catch (error) {
    showAuthError(describeError(error));
  } finally {
    button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

// ================================================================= the app

async function startApp() {
  $("#auth-screen").hidden = true;
  $("#splash").hidden = false;
  state.me = session.user;
  try {
    state.me = await api.me();
    session.user = state.me;
  } catch (error) {
    if (!session.signedIn || error.status === 401) {
      showAuth();
      return;
    }
    if (!state.me) {
      // Nothing cached to show: wait for the service.
      state.connection = "offline";
      renderBanner();
      setTimeout(startApp, 3000);
      return;
    }
  }
  state.users.set(state.me.id, state.me);
  scheduleRefresh();
  setupApp();
  hideSplash();
  $("#app").hidden = false;
  render();

  try {
    await loadConversationPage();
  } catch (error) {
    toast(`Could not load your chats: ${error.message}`);
  }
  loadReceipts();
  realtime = createRealtime({
    onStatus: (status) => {
      state.connection = status;
      renderBanner();
    },
    onConnect,
    onEvent,
    onSignedOut: () => signOutLocally("Your session has ended. Please sign in again."),
  });
  realtime.connect();
  await applyRoute();
  render();
}

let appWired = false;

function setupApp() {
  if (appWired) return;
  appWired = true;
  groupDialog = setupGroupDialog({
    onCreated: (conversation) => {
      const thread = upsertConversation(conversation);
      ensureUsers(thread.conv.member_ids);
      queryPresence(thread.conv.member_ids, { force: true });
      openConversation(thread.id);
    },
  });
  infoDialog = setupInfoDialog({
    onLeft: (id) => removeConversation(id),
    onChanged: () => render(),
  });

  $("#new-group").addEventListener("click", () => groupDialog());
  $("#sign-out").addEventListener("click", signOut);
  $("#back-button").addEventListener("click", goBack);
  $("#info-button").addEventListener("click", () => state.openId && infoDialog.open(state.openId));
  $("#chat-heading").addEventListener("click", () => state.openId && infoDialog.open(state.openId));
  window.addEventListener("popstate", () => applyRoute());

  setupSearch();
  setupComposer();
  setupMessageScroller();

  // More conversations when the end of the list scrolls into view.
  listObserver = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting) && state.listCursor) {
      loadConversationPage().catch((error) => toast(error.message));
    }
  });
  listObserver.observe($("#list-sentinel"));

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      render();
      maybeMarkRead();
    } else {
      stopTypingSignal();
    }
  });
  window.addEventListener("focus", () => maybeMarkRead());
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && ui.selectedKey) {
      ui.selectedKey = null;
      render();
    }
  });
}

// ---------------------------------------------------------------- rendering

let renderQueued = false;

/** Coalesces bursts of changes into one render per frame. */
function render() {
  if (renderQueued) return;
  renderQueued = true;
  const run = () => {
    renderQueued = false;
    renderNow();
  };
  if (document.hidden) setTimeout(run, 100);
  else requestAnimationFrame(run);
}

const actions = {
  openConversation: (id) => openConversation(id),
  startDirect: (user) => startDirect(user),
  retry: (clientMsgId) => retry(clientMsgId),
  discard: (clientMsgId) => discard(clientMsgId),
  beginEdit: (message) => beginComposerMode("edit", message),
  beginReply: (message) => beginComposerMode("reply", message),
  deleteMessage: (message) => deleteMessage(message),
  toggleSelected: (key) => {
    ui.selectedKey = ui.selectedKey === key ? null : key;
    render();
  },
  removeFile: (localId) => removeFile(localId),
  jumpTo: (messageId) => jumpTo(messageId),
};

function renderNow() {
  if (!state.me) return;
  renderBanner();
  renderSidebar(actions);
  renderChat(actions);
  maybeMarkRead();
  maybeLoadMoreHistory();
}

// ---------------------------------------------------------------- sign out

async function signOut() {
  const ok = await confirmDialog({ title: "Sign out?", text: "You can sign in again at any time.", confirm: "Sign out" });
  if (!ok) return;
  const refreshToken = session.refreshToken;
  realtime?.stop();
  session.clear();
  try {
    if (refreshToken) await api.logout(refreshToken);
  } catch {
    // The token expires on its own; the local session is gone either way.
  }
  location.replace(location.pathname);
}

function signOutLocally(note) {
  realtime?.stop();
  session.clear();
  if (note) sessionStorage.setItem(SIGNED_OUT_NOTE, note);
  location.replace(location.pathname);
}

// ================================================================= users and presence

const userLoads = new Map();
let userLoadsActive = 0;
const userQueue = [];

/** Loads profiles of unknown users, four at a time, and re-renders as they come. */
function ensureUsers(ids) {
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
 * for users sharing a conversation with us (others look offline), and sends
 * no event when one starts to, so a new conversation asks again (`force`).
 */
function queryPresence(ids, { force = false } = {}) {
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

function allMemberIds() {
  const ids = new Set();
  for (const thread of state.conversations.values()) for (const id of thread.conv.member_ids) ids.add(id);
  return [...ids];
}

// ================================================================= conversations

let listLoading = false;
let listObserver = null;

async function loadConversationPage() {
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

function removeConversation(id) {
  const thread = state.conversations.get(id);
  if (!thread) return;
  state.conversations.delete(id);
  if (state.openId === id) {
    state.openId = null;
    history.replaceState(null, "", location.pathname);
  }
  render();
}

async function startDirect(user) {
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

// ---------------------------------------------------------------- routing

function openConversation(id) {
  const url = `#/c/${encodeURIComponent(id)}`;
  if (state.openId) history.replaceState({ chat: id, pushed: history.state?.pushed }, "", url);
  else history.pushState({ chat: id, pushed: true }, "", url);
  showConversation(id);
}

function goBack() {
  if (history.state?.pushed) history.back();
  else {
    history.replaceState(null, "", location.pathname);
    showConversation(null);
  }
}

async function applyRoute() {
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
  const previous = state.openId ? state.conversations.get(state.openId) : null;
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

function openThread() {
  return state.openId ? state.conversations.get(state.openId) : null;
}

// ---------------------------------------------------------------- history

async function loadHistory(thread) {
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
function maybeLoadMoreHistory() {
  const thread = openThread();
  if (!thread || thread.historyLoading || !thread.hasMoreBefore) return;
  const scroller = $("#messages");
  if (scroller.scrollTop < 200 || scroller.scrollHeight <= scroller.clientHeight) loadHistory(thread);
}

function setupMessageScroller() {
  const scroller = $("#messages");
  scroller.addEventListener(
    "scroll",
    () => {
      const thread = openThread();
      if (!thread) return;
      if (scroller.scrollTop < 200) maybeLoadMoreHistory();
      renderJumpButton(thread);
      if (messagesNearBottom()) maybeMarkRead();
    },
    { passive: true },
  );
  $("#jump-button").addEventListener("click", () => {
    scroller.scrollTo({ top: scroller.scrollHeight, behavior: "smooth" });
  });

  // Files dropped on the conversation are attached.
  const chat = $("#chat-main");
  const overlay = $("#drop-overlay");
  let depth = 0;
  chat.addEventListener("dragenter", (event) => {
    if (!event.dataTransfer?.types?.includes("Files")) return;
    depth += 1;
    overlay.hidden = false;
  });
  chat.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) overlay.hidden = true;
  });
  chat.addEventListener("dragover", (event) => {
    if (event.dataTransfer?.types?.includes("Files")) event.preventDefault();
  });
  chat.addEventListener("drop", (event) => {
    depth = 0;
    overlay.hidden = true;
    if (!event.dataTransfer?.files?.length) return;
    event.preventDefault();
    addFiles([...event.dataTransfer.files]);
  });
}

function jumpTo(messageId) {
  const target = document.querySelector(`#message-items [data-id="${CSS.escape(messageId)}"]`);
  if (!target) {
    toast("That message is further back in the history.", { kind: "info" });
    return;
  }
  target.scrollIntoView({ block: "center", behavior: "smooth" });
  target.classList.add("flash");
  setTimeout(() => target.classList.remove("flash"), 1500);
}

// ================================================================= realtime

let syncRunning = null;
let syncAgain = false;

async function onConnect() {
  presenceAsked.clear();
  await requestSync();
  queryPresence(allMemberIds());
  for (const thread of state.conversations.values()) thread.deliveredSent = Math.min(thread.deliveredSent, thread.heldMax - 1);
  flushDeliveredSoon();
  maybeMarkRead(true);
}

/**
 * `sync` with a cursor per conversation: the server answers with everything
 * after each cursor (edits and deletions included) and with conversations
 * this device does not know. Concurrent requests collapse into one more run.
 */
function requestSync() {
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

let lastSyncedAt = null;

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

function onEvent(name, payload) {
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
      onConversationUpdated(payload);
      break;
    default:
      return;
  }
  render();
}

function onMessage(message) {
  const thread = state.conversations.get(message.conversation_id);
  if (!thread) {
    requestSync(); // a conversation this device has not seen yet
    return;
  }
  const result = mergeMessage(thread, message);
  if (message.seq > thread.heldMax + 1) requestSync(); // missed one: catch up
  if (result === "added") {
    ensureUsers([message.sender_id]);
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

function onConversationUpdated(conversation) {
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

// ---------------------------------------------------------------- receipts out

let deliveredTimer = 0;

/** Tells the server this device holds everything up to each conversation's cursor. */
function flushDeliveredSoon() {
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
function maybeMarkRead(force = false) {
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

// ================================================================= search

let searchTimer = 0;
let searchGeneration = 0;

function setupSearch() {
  const input = $("#user-search");
  input.addEventListener("input", () => {
    ui.search.query = input.value;
    clearTimeout(searchTimer);
    if (!input.value.trim()) {
      ui.search = { query: "", results: [], loading: false, error: "" };
      render();
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

function clearSearch() {
  $("#user-search").value = "";
  ui.search = { query: "", results: [], loading: false, error: "" };
  render();
}

// ================================================================= composer

const typingSignal = { conversationId: null, lastSent: 0, idleTimer: 0 };

function setupComposer() {
  const input = $("#message-input");
  const form = $("#composer");
  input.addEventListener("input", () => {
    autosize(input);
    onTypingInput(input.value);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    } else if (event.key === "Escape" && openThread()?.draft.mode) {
      cancelComposerMode();
    } else if (event.key === "ArrowUp" && !input.value) {
      const thread = openThread();
      const mine = thread
        ?.visibleMessages()
        .reverse()
        .find((message) => message.sender_id === state.me.id && !message.deleted && message.text);
      if (mine) {
        event.preventDefault();
        beginComposerMode("edit", mine);
      }
    }
  });
  input.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files ?? [])];
    if (files.length) {
      event.preventDefault();
      addFiles(files);
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitComposer();
  });
  $("#attach-button").addEventListener("click", () => $("#file-input").click());
  $("#file-input").addEventListener("change", (event) => {
    addFiles([...event.target.files]);
    event.target.value = "";
  });
  $("#context-cancel").addEventListener("click", cancelComposerMode);
}

function autosize(input) {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

function saveDraft(thread) {
  thread.draft.text = $("#message-input").value;
}

function restoreDraft(thread) {
  const input = $("#message-input");
  input.value = thread.draft.text;
  autosize(input);
}

function onTypingInput(value) {
  const thread = openThread();
  if (!thread || !realtime) return;
  if (thread.draft.mode?.kind === "edit" || !value.trim()) {
    stopTypingSignal();
    return;
  }
  const now = Date.now();
  if (typingSignal.conversationId !== thread.id || now - typingSignal.lastSent > TYPING_RENEW_MS) {
    if (typingSignal.conversationId && typingSignal.conversationId !== thread.id) stopTypingSignal();
    realtime.signal("typing", { conversation_id: thread.id, is_typing: true });
    typingSignal.conversationId = thread.id;
    typingSignal.lastSent = now;
  }
  clearTimeout(typingSignal.idleTimer);
  typingSignal.idleTimer = setTimeout(stopTypingSignal, TYPING_IDLE_MS);
}

function stopTypingSignal() {
  clearTimeout(typingSignal.idleTimer);
  if (!typingSignal.conversationId) return;
  realtime?.signal("typing", { conversation_id: typingSignal.conversationId, is_typing: false });
  typingSignal.conversationId = null;
  typingSignal.lastSent = 0;
}

function beginComposerMode(kind, message) {
  const thread = openThread();
  if (!thread) return;
  if (kind === "edit" && thread.draft.mode?.kind !== "edit") saveDraft(thread);
  thread.draft.mode = { kind, message };
  ui.selectedKey = null;
  const input = $("#message-input");
  if (kind === "edit") {
    stopTypingSignal();
    input.value = message.text ?? "";
  }
  autosize(input);
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
  render();
}

function cancelComposerMode() {
  const thread = openThread();
  if (!thread?.draft.mode) return;
  const wasEdit = thread.draft.mode.kind === "edit";
  thread.draft.mode = null;
  if (wasEdit) restoreDraft(thread);
  render();
}

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // Insecure contexts (plain http on a LAN address) lack randomUUID.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function submitComposer() {
  const thread = openThread();
  if (!thread) return;
  const input = $("#message-input");
  const text = input.value.trim();
  const mode = thread.draft.mode;

  if (mode?.kind === "edit") {
    if (!text) {
      toast("A message can't be empty. Delete it instead.", { kind: "info" });
      return;
    }
    if (text === mode.message.text) {
      cancelComposerMode();
      return;
    }
    try {
      const edited = await api.editMessage(thread.id, mode.message.id, text);
      if (edited?.id) mergeMessage(thread, edited);
      thread.draft.mode = null;
      restoreDraft(thread);
    } catch (error) {
      toast(`Could not edit: ${error.message}`);
    }
    render();
    return;
  }

  const files = thread.draft.files;
  if (files.some((file) => file.status === "uploading")) {
    toast("Wait for the files to finish uploading.", { kind: "info" });
    return;
  }
  const ready = files.filter((file) => file.status === "ready");
  if (!text && !ready.length) return;

  const local = {
    client_msg_id: uuid(),
    conversation_id: thread.id,
    sender_id: state.me.id,
    text: text || null,
    attachments: ready.map((file) => file.attachment),
    reply_to_id: mode?.kind === "reply" ? mode.message.id : null,
    created_at: new Date().toISOString(),
    edited_at: null,
    deleted: false,
    status: "sending",
    error: null,
  };
  thread.pending.set(local.client_msg_id, local);
  thread.draft = { text: "", files: [], mode: null };
  thread.unreadMarker = null;
  input.value = "";
  autosize(input);
  stopTypingSignal();
  ui.stickToBottom = true;
  render();
  await deliver(thread, local);
}

/** Sends a local message; a retry sends the same client_msg_id, so it is stored once. */
async function deliver(thread, local) {
  local.status = "sending";
  local.error = null;
  render();
  const payload = { conversation_id: thread.id, client_msg_id: local.client_msg_id };
  if (local.text) payload.text = local.text;
  if (local.attachments.length) payload.attachment_ids = local.attachments.map((attachment) => attachment.id);
  if (local.reply_to_id) payload.reply_to_id = local.reply_to_id;
  try {
    const answer = await realtime.request("message:send", payload, SEND_TIMEOUT_MS);
    if (answer.message) onMessage(answer.message);
    thread.pending.delete(local.client_msg_id);
  } catch (error) {
    if (!thread.pending.has(local.client_msg_id)) return;
    const wait = error.details?.retry_after;
    if (error.code === "unavailable" && wait && (local.busyRetries ?? 0) < BUSY_RETRIES) {
      // The server shed it under load and said when to come back: do so, still "sending".
      local.busyRetries = (local.busyRetries ?? 0) + 1;
      setTimeout(() => deliver(thread, local), wait * 1000);
      return;
    }
    local.status = "failed";
    local.error = error.message;
  }
  render();
}

function retry(clientMsgId) {
  const thread = openThread();
  const local = thread?.pending.get(clientMsgId);
  if (local) deliver(thread, local);
}

function discard(clientMsgId) {
  openThread()?.pending.delete(clientMsgId);
  render();
}

async function deleteMessage(message) {
  const thread = state.conversations.get(message.conversation_id);
  if (!thread) return;
  const ok = await confirmDialog({
    title: "Delete message?",
    text: "It will be removed for everyone in this conversation.",
    confirm: "Delete",
  });
  if (!ok) return;
  try {
    const answer = await api.deleteMessage(thread.id, message.id);
    const gone = answer?.id ? answer : { ...message, deleted: true, text: null, attachments: [] };
    mergeMessage(thread, gone);
    if (thread.draft.mode?.message.id === message.id) cancelComposerMode();
  } catch (error) {
    toast(`Could not delete: ${error.message}`);
  }
  render();
}

// ---------------------------------------------------------------- attachments

let localFileId = 0;

function addFiles(files) {
  const thread = openThread();
  if (!thread || !files.length) return;
  if (thread.draft.mode?.kind === "edit") cancelComposerMode();
  for (const file of files) {
    const entry = {
      localId: `f${++localFileId}`,
      file,
      status: "uploading",
      error: null,
      attachment: null,
      previewUrl: file.type.startsWith("image/") ? URL.createObjectURL(file) : null,
    };
    thread.draft.files.push(entry);
    api
      .upload(file)
      .then((attachment) => {
        entry.attachment = attachment;
        entry.status = "ready";
        if (entry.previewUrl) rememberLocalFile(attachment.id, file);
      })
      .catch((error) => {
        entry.status = "error";
        entry.error = error.message;
      })
      .finally(render);
  }
  render();
}

function removeFile(localId) {
  const thread = openThread();
  if (!thread) return;
  const entry = thread.draft.files.find((file) => file.localId === localId);
  if (entry?.previewUrl) URL.revokeObjectURL(entry.previewUrl);
  thread.draft.files = thread.draft.files.filter((file) => file.localId !== localId);
  render();
}
