// The web client's entry point: wires the session, the connection and the
// page's controls to the modules that do the work.
//
//   signin.js         the sign-in form, and signing out
//   conversations.js  the conversation list, page by page
//   sync.js           catching up: `sync`, gaps, older history
//   server-events.js  what the server pushes, merged into the state
//   composer.js       writing, editing and sending messages, attachments
//   navigation.js     which conversation is open (the URL)
//   search.js         finding people, starting a direct chat
//   people.js         profiles and presence of other people
//   receipts.js       the delivered and read receipts this device sends
//   store.js          the state and its merge rules; view.js draws it
//   api.js            REST and the session's tokens; realtime.js the Socket.IO connection
//   dialogs.js        dialogs and toasts; attachments.js, format.js, dom.js help the views

import { api, events as authEvents, loadConfig, scheduleRefresh, session } from "./api.js";
import {
  beginComposerMode,
  deleteMessage,
  discard,
  removeFile,
  retry,
  setupComposer,
  stopTypingSignal,
} from "./composer.js";
import { loadConversationPage, loadPagesAsListScrolls, removeConversation } from "./conversations.js";
import { setupGroupDialog, setupInfoDialog, toast } from "./dialogs.js";
import { $, icon } from "./dom.js";
import { applyRoute, goBack, jumpTo, openConversation } from "./navigation.js";
import { allMemberIds, ensureUsers, forgetPresenceQueries, queryPresence } from "./people.js";
import { realtime, startRealtime } from "./realtime.js";
import { maybeMarkRead, resendReceipts } from "./receipts.js";
import { setupSearch, startDirect } from "./search.js";
import { handleServerEvent } from "./server-events.js";
import { showSignIn, signOut, signOutLocally } from "./signin.js";
import { loadReceipts, openThread, state, upsertConversation } from "./store.js";
import { maybeLoadMoreHistory, requestSync } from "./sync.js";
import {
  messagesNearBottom,
  render,
  renderBanner,
  renderChat,
  renderJumpButton,
  renderSidebar,
  setRenderer,
  ui,
} from "./view.js";

const SESSION_ENDED = "Your session has ended. Please sign in again.";

let groupDialog = null;
let infoDialog = null;

// What the views call back when the person acts on a row or a message.
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

setRenderer(() => {
  if (!state.me) return;
  renderBanner();
  renderSidebar(actions);
  renderChat(actions);
  maybeMarkRead();
  maybeLoadMoreHistory();
});

boot();

async function boot() {
  await loadConfig();
  decorateStaticButtons();
  authEvents.addEventListener("signedout", () => signOutLocally(SESSION_ENDED));
  authEvents.addEventListener("tokens", (event) => realtime?.updateToken(event.detail));
  if (session.signedIn) await startApp();
  else showSignIn(startApp);
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

async function startApp() {
  $("#auth-screen").hidden = true;
  $("#splash").hidden = false;
  state.me = session.user;
  try {
    state.me = await api.me();
    session.user = state.me;
  } catch (error) {
    if (!session.signedIn || error.status === 401) {
      showSignIn(startApp);
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
  $("#splash").hidden = true;
  $("#app").hidden = false;
  render();

  try {
    await loadConversationPage();
  } catch (error) {
    toast(`Could not load your chats: ${error.message}`);
  }
  loadReceipts();
  startRealtime({
    onStatus: (status) => {
      state.connection = status;
      renderBanner();
    },
    onConnect,
    onEvent: (name, payload) => handleServerEvent(name, payload, { infoDialog }),
    onSignedOut: () => signOutLocally(SESSION_ENDED),
  });
  await applyRoute();
  render();
}

/** After every (re)connection: catch up, then what the old connection may have missed. */
async function onConnect() {
  forgetPresenceQueries();
  await requestSync();
  queryPresence(allMemberIds());
  resendReceipts();
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
  loadPagesAsListScrolls();

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
}
