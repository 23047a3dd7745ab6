// Rendering: turns the state into DOM. Lists are reconciled by key, so an
// update rebuilds only the rows whose content changed.

import { renderAttachment } from "./attachments.js";
import { $, h, icon, reconcile, setChildren } from "./dom.js";
import {
  dayKey,
  formatDay,
  formatFull,
  formatLastSeen,
  formatListStamp,
  formatSize,
  formatTime,
  hueOf,
  initials,
  richText,
  toDate,
} from "./format.js";
import {
  directPeer,
  firstName,
  openThread,
  otherMembers,
  sortedThreads,
  state,
  threadTitle,
  userName,
} from "./store.js";

/** UI-only state: what is selected, searched, typed. */
export const ui = {
  search: { query: "", results: [], loading: false, error: "" },
  selectedKey: null, // message whose actions are shown (touch screens)
  stickToBottom: false, // the next render scrolls the message list to the end
  listHasMore: false,
};

// ----------------------------------------------------------------- scheduling

let renderQueued = false;
let renderNow = () => {};

/** app.js says once what a render draws (and sets going after it). */
export function setRenderer(draw) {
  renderNow = draw;
}

/** Coalesces bursts of changes into one render per frame. */
export function render() {
  if (renderQueued) return;
  renderQueued = true;
  const run = () => {
    renderQueued = false;
    renderNow();
  };
  if (document.hidden) setTimeout(run, 100);
  else requestAnimationFrame(run);
}

const BANNER_TEXT = {
  connecting: "Connecting…",
  reconnecting: "Connection lost. Reconnecting…",
  offline: "You are offline. Messages will be sent when the connection is back.",
  syncing: "Catching up…",
  connected: "Connected",
};

// ----------------------------------------------------------------- pieces

export function avatar(id, name, { online = null, size = "" } = {}) {
  const el = h("span", { class: `avatar ${size}`, "aria-hidden": "true" }, initials(name));
  el.style.setProperty("--hue", hueOf(id));
  if (online !== null) {
    el.append(h("span", { class: `presence-dot ${online ? "online" : ""}`, testid: online ? "online-dot" : null }));
  }
  return el;
}

/** A list row for a person found by search: a button with `action` as its label on the right. */
export function personItem(user, { testid, online = null, action, onclick }) {
  const name = user.display_name || user.username;
  return h(
    "li",
    {},
    h(
      "button",
      {
        type: "button",
        class: "person",
        testid,
        dataset: { userId: user.id, username: user.username },
        onclick,
      },
      avatar(user.id, name, { online }),
      h(
        "span",
        { class: "person-text" },
        h("span", { class: "person-name" }, name),
        h("span", { class: "person-username" }, `@${user.username}`),
      ),
      h("span", { class: "person-action" }, action),
    ),
  );
}

function groupAvatar(thread) {
  const el = h("span", { class: "avatar group", "aria-hidden": "true" }, icon("group", { size: 20 }));
  el.style.setProperty("--hue", hueOf(thread.id));
  return el;
}

function threadAvatar(thread) {
  const peer = directPeer(thread);
  if (thread.conv.type === "group") return groupAvatar(thread);
  const id = peer ?? state.me.id;
  return avatar(id, userName(id), { online: peer ? isOnline(peer) : null });
}

export function isOnline(userId) {
  return Boolean(state.presence.get(userId)?.online);
}

function typingNames(thread) {
  return [...thread.typing.keys()].filter((id) => id !== state.me.id);
}

function typingText(thread, { short = false } = {}) {
  const ids = typingNames(thread);
  if (!ids.length) return "";
  if (short && thread.conv.type === "direct") return "typing…";
  if (ids.length === 1) return `${firstName(ids[0])} is typing…`;
  if (ids.length === 2) return `${firstName(ids[0])} and ${firstName(ids[1])} are typing…`;
  return `${ids.length} people are typing…`;
}

function messageSummary(message) {
  if (!message) return "";
  if (message.deleted) return "Message deleted";
  if (message.text) return message.text.replace(/\s+/g, " ");
  const files = message.attachments ?? [];
  if (files.length === 1) return `📎 ${files[0].name}`;
  if (files.length > 1) return `📎 ${files.length} files`;
  return "";
}

// ----------------------------------------------------------------- banner

export function renderBanner() {
  const banner = $("#banner");
  const status = state.connection;
  banner.dataset.state = status;
  const visible = status !== "connected" && status !== "idle";
  banner.hidden = !visible;
  banner.textContent = visible ? BANNER_TEXT[status] : "";
  banner.className = `banner ${status}`;
}

// ----------------------------------------------------------------- sidebar

export function renderSidebar(actions) {
  const me = state.me;
  setChildren($("#me-avatar"), initials(me.display_name || me.username));
  $("#me-avatar").style.setProperty("--hue", hueOf(me.id));
  $("#me-name").textContent = me.display_name || me.username;
  $("#me-username").textContent = `@${me.username}`;

  const searching = ui.search.query.trim() !== "";
  $("#search-results").hidden = !searching;
  $("#conversations").hidden = searching;
  if (searching) renderPeople(actions);

  const threads = sortedThreads();
  const unreadChats = threads.filter((thread) => thread.unread > 0).length;
  document.title = unreadChats ? `(${unreadChats}) Chat` : "Chat";
  reconcile(
    $("#conversation-list"),
    threads.map((thread) => conversationItem(thread, actions)),
  );
  $("#list-empty").hidden = threads.length > 0 || state.listCursor === undefined;
}

function renderPeople(actions) {
  const { results, loading, error } = ui.search;
  reconcile(
    $("#people-list"),
    results.map((user) => {
      const online = isOnline(user.id);
      return {
        key: user.id,
        sig: JSON.stringify([user.display_name, user.username, online]),
        create: () =>
          personItem(user, {
            testid: "user-result",
            online,
            action: "Message",
            onclick: () => actions.startDirect(user),
          }),
      };
    }),
  );
  const empty = $("#search-empty");
  empty.hidden = results.length > 0 && !error;
  empty.textContent = error || (loading ? "Searching…" : "No one found with that username.");
}

function conversationItem(thread, actions) {
  const conv = thread.conv;
  const title = threadTitle(thread);
  const pending = [...thread.pending.values()].at(-1);
  const last = pending ?? conv.last_message;
  const typing = typingText(thread, { short: true });
  let prefix = "";
  if (last && !last.deleted) {
    if (last.sender_id === state.me.id) prefix = "You: ";
    else if (conv.type === "group") prefix = `${firstName(last.sender_id)}: `;
  }
  const preview = typing || (last ? prefix + messageSummary(last) : "No messages yet");
  const unread = thread.unread;
  const selected = state.openId === thread.id;
  const peer = directPeer(thread);
  const online = peer ? isOnline(peer) : null;
  const stamp = formatListStamp(last?.created_at ?? conv.updated_at ?? conv.created_at);
  let ownStatus = null;
  if (pending && !typing) ownStatus = pending.status;
  else if (last && !last.deleted && last.sender_id === state.me.id && !typing) {
    ownStatus = thread.statusOf(last.seq, state.me.id);
  }
  return {
    key: thread.id,
    sig: JSON.stringify([title, preview, unread, selected, online, stamp, ownStatus, Boolean(typing)]),
    create: () => {
      const labelParts = [title];
      if (unread) labelParts.push(`${unread} unread`);
      return h(
        "li",
        { class: "conversation-row", testid: "conversation-item", dataset: { conversationId: thread.id } },
        h(
          "button",
          {
            type: "button",
            class: `conversation${selected ? " selected" : ""}${unread ? " unread" : ""}`,
            "aria-current": selected ? "true" : null,
            "aria-label": labelParts.join(", "),
            onclick: () => actions.openConversation(thread.id),
          },
          threadAvatar(thread),
          h(
            "span",
            { class: "conversation-text" },
            h(
              "span",
              { class: "conversation-top" },
              h("span", { class: "conversation-title", testid: "conversation-title" }, title),
              h("time", { class: "conversation-time", datetime: last?.created_at ?? conv.updated_at }, stamp),
            ),
            h(
              "span",
              { class: "conversation-bottom" },
              ownStatus ? statusIcon(ownStatus) : null,
              h(
                "span",
                {
                  class: `conversation-preview${typing ? " typing-preview" : ""}`,
                  testid: typing ? "conversation-typing" : "conversation-preview",
                },
                preview,
              ),
              unread
                ? h(
                    "span",
                    { class: "badge", testid: "unread-badge", "aria-hidden": "true" },
                    unread > 99 ? "99+" : String(unread),
                  )
                : null,
            ),
          ),
        ),
      );
    },
  };
}

// ----------------------------------------------------------------- chat

export function renderChat(actions) {
  const thread = openThread();
  $("#app").dataset.view = thread ? "chat" : "list";
  $("#chat-placeholder").hidden = Boolean(thread);
  $("#chat-main").hidden = !thread;
  if (!thread) return;

  renderHeader(thread);
  renderMessages(thread, actions);
  renderTyping(thread);
  renderComposerExtras(thread, actions);
}

function renderHeader(thread) {
  const title = threadTitle(thread);
  $("#chat-title").textContent = title;
  const avatarSlot = $("#chat-avatar");
  const fresh = threadAvatar(thread);
  fresh.id = "chat-avatar";
  avatarSlot.replaceWith(fresh);

  const subtitle = $("#chat-subtitle");
  const peer = directPeer(thread);
  const typing = typingText(thread, { short: true });
  let text;
  let mode = "";
  if (typing) {
    text = typing;
    mode = "typing";
  } else if (peer) {
    const presence = state.presence.get(peer);
    if (presence?.online) {
      text = "online";
      mode = "online";
    } else {
      text = presence ? formatLastSeen(presence.last_seen) : "";
    }
  } else if (thread.conv.type === "group") {
    const members = thread.conv.member_ids.length;
    const online = otherMembers(thread).filter(isOnline).length;
    text = `${members} member${members === 1 ? "" : "s"}${online ? `, ${online} online` : ""}`;
  } else {
    text = "Notes to yourself";
  }
  subtitle.textContent = text;
  subtitle.dataset.state = mode;
  subtitle.className = mode ? `chat-subtitle is-${mode}` : "chat-subtitle";
}

function renderTyping(thread) {
  const text = typingText(thread);
  const box = $("#typing");
  box.hidden = !text;
  $("#typing-text").textContent = text;
}

function isNearBottom(el, slack = 48) {
  return el.scrollHeight - el.scrollTop - el.clientHeight < slack;
}

export function messagesNearBottom() {
  return isNearBottom($("#messages"));
}

function renderMessages(thread, actions) {
  const scroller = $("#messages");
  const list = $("#message-items");
  const switched = list.dataset.thread !== thread.id;
  const stick = switched || ui.stickToBottom || isNearBottom(scroller);
  ui.stickToBottom = false;

  // Remember what is on screen to put it back where it was after a prepend.
  // Separators move when older messages arrive, and a row may be rebuilt
  // (its grouping changes): anchor on a message, found again by its key.
  let anchorKey = null;
  let anchorOffset = 0;
  if (!stick) {
    for (const child of list.querySelectorAll(":scope > .message")) {
      if (child.offsetTop + child.offsetHeight > scroller.scrollTop) {
        anchorKey = child.dataset.key;
        anchorOffset = child.offsetTop - scroller.scrollTop;
        break;
      }
    }
  }

  if (switched) {
    list.replaceChildren();
    list.dataset.thread = thread.id;
  }
  reconcile(list, messageItems(thread, actions, () => keepBottom(scroller)));

  const status = $("#history-status");
  if (thread.historyLoading) status.textContent = "Loading earlier messages…";
  else if (!thread.hasMoreBefore && thread.messages.size > 0) status.textContent = "This is the beginning of the conversation.";
  else if (!thread.hasMoreBefore && thread.pending.size === 0) status.textContent = "No messages yet. Say hello!";
  else status.textContent = "";

  if (stick) {
    const marker = switched ? list.querySelector(".unread-marker") : null;
    if (marker) scroller.scrollTop = Math.max(0, marker.offsetTop - 24);
    else scroller.scrollTop = scroller.scrollHeight;
  } else if (anchorKey) {
    const anchor = [...list.children].find((child) => child.dataset.key === anchorKey);
    if (anchor) scroller.scrollTop = anchor.offsetTop - anchorOffset;
  }
  renderJumpButton(thread);
}

/** Images finish loading after the render; keep the end in view if it was. */
function keepBottom(scroller) {
  if (scroller.dataset.atBottom === "true") scroller.scrollTop = scroller.scrollHeight;
}

export function renderJumpButton(thread) {
  const scroller = $("#messages");
  const atBottom = isNearBottom(scroller, 120);
  scroller.dataset.atBottom = String(isNearBottom(scroller));
  const button = $("#jump-button");
  button.hidden = atBottom;
  const unread = thread?.unread ?? 0;
  setChildren(button, icon("down", { size: 18 }), unread ? h("span", { class: "badge" }, String(unread)) : null);
}

const GROUP_GAP_MS = 5 * 60 * 1000;

function messageItems(thread, actions, onImageLoad) {
  const myId = state.me.id;
  const messages = thread.visibleMessages();
  const pending = [...thread.pending.values()];
  const all = [...messages, ...pending];
  const items = [];
  const showSender = thread.conv.type === "group";
  const marker = thread.unreadMarker;
  let markerPlaced = false;

  for (let i = 0; i < all.length; i++) {
    const message = all[i];
    const previous = all[i - 1];
    const next = all[i + 1];
    const isPending = !message.id;
    const day = dayKey(message.created_at);
    if (!previous || dayKey(previous.created_at) !== day) {
      const label = formatDay(message.created_at);
      items.push({
        key: `day-${day}`,
        sig: label,
        create: () => h("li", { class: "day-separator", role: "separator" }, h("span", {}, label)),
      });
    }
    const markerHere =
      !markerPlaced && marker != null && !isPending && message.seq >= marker && message.sender_id !== myId;
    if (markerHere) {
      markerPlaced = true;
      items.push({
        key: "unread-marker",
        sig: "1",
        create: () =>
          h("li", { class: "unread-marker", role: "separator", testid: "unread-marker" }, h("span", {}, "New messages")),
      });
    }
    const continues = (a, b) =>
      a &&
      b &&
      a.sender_id === b.sender_id &&
      dayKey(a.created_at) === dayKey(b.created_at) &&
      Math.abs(toDate(b.created_at) - toDate(a.created_at)) < GROUP_GAP_MS &&
      !(a.deleted || b.deleted);
    const first = !continues(previous, message) || markerHere;
    const last = !continues(message, next);
    items.push(messageItem(thread, message, { first, last, showSender, actions, onImageLoad }));
  }
  return items;
}

function replyQuote(thread, replyToId, actions) {
  const seq = thread.seqOf.get(replyToId);
  const original = seq != null ? thread.messages.get(seq) : null;
  const quote = h(
    "button",
    {
      type: "button",
      class: "reply-quote",
      testid: "reply-quote",
      onclick: (event) => {
        event.stopPropagation();
        actions.jumpTo(replyToId);
      },
    },
    h("span", { class: "reply-author" }, original ? userName(original.sender_id) : "Reply"),
    h("span", { class: "reply-text" }, original ? messageSummary(original) : "Earlier message"),
  );
  if (original) quote.style.setProperty("--hue", hueOf(original.sender_id));
  return quote;
}

function statusIcon(status) {
  const names = {
    sending: ["clock", "Sending"],
    failed: ["alert", "Not sent"],
    sent: ["check", "Sent"],
    delivered: ["checks", "Delivered"],
    read: ["checks", "Read"],
  };
  const [name, label] = names[status];
  return h(
    "span",
    { class: `ticks ${status}`, testid: "message-status", dataset: { status }, title: label },
    icon(name, { size: 16, label }),
  );
}

function messageItem(thread, message, { first, last, showSender, actions, onImageLoad }) {
  const myId = state.me.id;
  const own = message.sender_id === myId;
  const isPending = !message.id;
  const status = isPending ? message.status : own ? thread.statusOf(message.seq, myId) : null;
  const key = isPending ? `local-${message.client_msg_id}` : `m-${message.id}`;
  const replyTo = message.reply_to_id;
  const replySeq = replyTo ? thread.seqOf.get(replyTo) : null;
  const replied = replySeq != null ? thread.messages.get(replySeq) : null;
  const selected = ui.selectedKey === key;
  const sig = JSON.stringify([
    message.seq,
    message.text,
    message.deleted,
    message.edited_at,
    (message.attachments ?? []).map((a) => a.id),
    status,
    message.error,
    first,
    last,
    showSender && !own ? userName(message.sender_id) : "",
    replied ? [replied.id, replied.deleted, replied.edited_at] : replyTo,
    selected,
  ]);

  return {
    key,
    sig,
    create: () => {
      const classes = ["message", own ? "own" : "other"];
      if (first) classes.push("first");
      if (last) classes.push("last");
      if (message.deleted) classes.push("deleted");
      if (selected) classes.push("selected");
      if (isPending) classes.push(message.status);
      const li = h("li", {
        class: classes.join(" "),
        testid: "message",
        dataset: {
          id: message.id ?? "",
          seq: message.seq ?? "",
          clientMsgId: message.client_msg_id,
          own: String(own),
          status: status ?? "",
          senderId: message.sender_id,
        },
      });

      const bubble = h("div", { class: "bubble", tabindex: "0" });
      bubble.addEventListener("click", (event) => {
        if (event.target.closest("a, button")) return;
        actions.toggleSelected(key);
      });
      bubble.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && event.target === bubble) actions.toggleSelected(key);
      });
      if (first && showSender && !own) {
        const name = h("span", { class: "sender", testid: "message-sender" }, userName(message.sender_id));
        name.style.setProperty("--hue", hueOf(message.sender_id));
        bubble.append(name);
      }

      if (message.deleted) {
        bubble.append(
          h("span", { class: "tombstone", testid: "message-deleted" }, icon("trash", { size: 15 }), "Message deleted"),
        );
      } else {
        if (replyTo) bubble.append(replyQuote(thread, replyTo, actions));
        const attachments = message.attachments ?? [];
        if (attachments.length) {
          bubble.append(
            h(
              "div",
              { class: "attachments" },
              attachments.map((attachment) => renderAttachment(attachment, { onImageLoad })),
            ),
          );
        }
        if (message.text) {
          bubble.append(h("div", { class: "text", testid: "message-text", dir: "auto" }, richText(message.text)));
        }
      }

      const meta = h("span", { class: "meta" });
      if (message.edited_at && !message.deleted) {
        meta.append(h("span", { class: "edited", testid: "message-edited", title: formatFull(message.edited_at) }, "edited"));
      }
      meta.append(h("time", { datetime: message.created_at, title: formatFull(message.created_at) }, formatTime(message.created_at)));
      if (status) meta.append(statusIcon(status));
      bubble.append(meta);

      const row = h("div", { class: "message-row" }, bubble);
      if (!isPending && !message.deleted) row.append(messageActions(message, own, actions));
      li.append(row);

      if (isPending && message.status === "failed") {
        li.append(
          h(
            "div",
            { class: "send-failed", role: "alert" },
            h("span", {}, message.error ? `Not sent: ${message.error}` : "Not sent."),
            h(
              "button",
              {
                type: "button",
                class: "link-button",
                testid: "retry-button",
                onclick: () => actions.retry(message.client_msg_id),
              },
              "Retry",
            ),
            h(
              "button",
              {
                type: "button",
                class: "link-button muted",
                testid: "discard-button",
                onclick: () => actions.discard(message.client_msg_id),
              },
              "Discard",
            ),
          ),
        );
      }
      return li;
    },
  };
}

function messageActions(message, own, actions) {
  const button = (name, label, testid, handler, extra = "") =>
    h(
      "button",
      {
        type: "button",
        class: `icon-button small ${extra}`,
        "aria-label": label,
        title: label,
        testid,
        onclick: (event) => {
          event.stopPropagation();
          handler(message);
        },
      },
      icon(name, { size: 17 }),
    );
  return h(
    "div",
    { class: "message-actions", role: "group", "aria-label": "Message actions" },
    button("reply", "Reply", "reply-message", actions.beginReply),
    own && message.text != null ? button("edit", "Edit", "edit-message", actions.beginEdit) : null,
    own ? button("trash", "Delete", "delete-message", actions.deleteMessage, "danger") : null,
  );
}

function renderComposerExtras(thread, actions) {
  const draft = thread.draft;
  const context = $("#composer-context");
  const mode = draft.mode;
  context.hidden = !mode;
  if (mode) {
    context.dataset.kind = mode.kind;
    setChildren($("#context-icon"), icon(mode.kind === "edit" ? "edit" : "reply", { size: 18 }));
    $("#context-title").textContent =
      mode.kind === "edit" ? "Edit message" : `Reply to ${userName(mode.message.sender_id)}`;
    $("#context-preview").textContent = messageSummary(mode.message);
  }
  $("#send-button").setAttribute("aria-label", mode?.kind === "edit" ? "Save" : "Send");

  const chips = $("#file-chips");
  chips.hidden = draft.files.length === 0;
  reconcile(
    chips,
    draft.files.map((file) => ({
      key: file.localId,
      sig: JSON.stringify([file.status, file.error]),
      create: () =>
        h(
          "li",
          { class: `file-chip ${file.status}`, testid: "pending-attachment", dataset: { status: file.status } },
          file.previewUrl
            ? h("img", { src: file.previewUrl, alt: "", class: "chip-thumb" })
            : h("span", { class: "chip-icon" }, icon("file", { size: 18 })),
          h(
            "span",
            { class: "chip-text" },
            h("span", { class: "chip-name" }, file.file.name),
            h(
              "span",
              { class: "chip-meta" },
              file.status === "uploading"
                ? "Uploading…"
                : file.status === "error"
                  ? file.error
                  : formatSize(file.file.size),
            ),
          ),
          h(
            "button",
            {
              type: "button",
              class: "icon-button small",
              "aria-label": `Remove ${file.file.name}`,
              onclick: () => actions.removeFile(file.localId),
            },
            icon("close", { size: 16 }),
          ),
        ),
    })),
  );
  const uploading = draft.files.some((file) => file.status === "uploading");
  $("#send-button").disabled = uploading;
}
