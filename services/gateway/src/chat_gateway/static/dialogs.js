// Dialogs (new group, conversation details, confirmations) and toasts.

import { api } from "./api.js";
import { $, h, icon, setChildren } from "./dom.js";
import { formatFull, formatLastSeen } from "./format.js";
import { directPeer, state, threadTitle, userName } from "./store.js";
import { avatar, isOnline, personItem } from "./view.js";

// ----------------------------------------------------------------- toasts

export function toast(message, { kind = "error", timeout = 5000 } = {}) {
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status", testid: "toast" }, message);
  $("#toasts").append(el);
  setTimeout(() => {
    el.classList.add("leaving");
    setTimeout(() => el.remove(), 300);
  }, timeout);
}

// ----------------------------------------------------------------- confirm

export function confirmDialog({ title, text, confirm = "OK", danger = true }) {
  const dialog = $("#confirm-dialog");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  const ok = $("#confirm-ok");
  ok.textContent = confirm;
  ok.className = `button ${danger ? "danger" : "primary"}`;
  dialog.returnValue = "";
  dialog.showModal();
  ok.focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

function wireClose(dialog) {
  for (const button of dialog.querySelectorAll("[data-close]")) {
    if (!button.firstChild) button.append(icon("close", { size: 18 }));
    button.addEventListener("click", () => dialog.close("cancel"));
  }
  // A click on the backdrop (outside the dialog box) closes it.
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close("cancel");
  });
}

// ----------------------------------------------------------------- people picker

/**
 * A search box that lists users by username prefix; `onPick(user)` gets a
 * click. Returns `reset()`.
 */
function peoplePicker({ input, results, exclude, onPick }) {
  let timer = 0;
  let generation = 0;
  const search = async () => {
    const query = input.value.trim().toLowerCase();
    const mine = ++generation;
    if (!query) {
      results.replaceChildren();
      return;
    }
    try {
      const { items } = await api.searchUsers(query, 10);
      if (mine !== generation) return;
      const shown = items.filter((user) => !exclude().has(user.id));
      setChildren(
        results,
        shown.length
          ? shown.map((user) =>
              personItem(user, {
                testid: "picker-result",
                action: icon("plus", { size: 18 }),
                onclick: () => onPick(user),
              }),
            )
          : h("li", { class: "empty" }, "No one found."),
      );
    } catch (error) {
      if (mine === generation) setChildren(results, h("li", { class: "empty" }, error.message));
    }
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });
  // Enter picks the first match instead of submitting the surrounding form.
  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    results.querySelector("button.person")?.click();
  });
  return {
    refresh: search,
    reset() {
      input.value = "";
      results.replaceChildren();
    },
  };
}

// ----------------------------------------------------------------- new group

export function setupGroupDialog({ onCreated }) {
  const dialog = $("#group-dialog");
  const form = $("#group-form");
  const selected = new Map();
  const errorBox = $("#group-error");
  const showError = (text) => {
    errorBox.textContent = text;
    errorBox.hidden = false;
  };
  wireClose(dialog);

  const renderSelected = () => {
    setChildren(
      $("#group-selected"),
      [...selected.values()].map((user) =>
        h(
          "li",
          { class: "chip", testid: "group-selected-member" },
          avatar(user.id, user.display_name || user.username, { size: "tiny" }),
          h("span", {}, user.display_name || user.username),
          h(
            "button",
            {
              type: "button",
              class: "icon-button small",
              "aria-label": `Remove ${user.username}`,
              onclick: () => {
                selected.delete(user.id);
                renderSelected();
                picker.refresh();
              },
            },
            icon("close", { size: 14 }),
          ),
        ),
      ),
    );
  };

  const picker = peoplePicker({
    input: $("#group-search"),
    results: $("#group-results"),
    exclude: () => new Set([state.me.id, ...selected.keys()]),
    onPick: (user) => {
      selected.set(user.id, user);
      renderSelected();
      picker.reset();
      $("#group-search").focus();
    },
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const title = $("#group-title").value.trim();
    errorBox.hidden = true;
    if (!title) {
      showError("Give the group a name.");
      $("#group-title").focus();
      return;
    }
    if (selected.size === 0) {
      showError("Add at least one person.");
      $("#group-search").focus();
      return;
    }
    const button = $("#group-create");
    button.disabled = true;
    try {
      const conversation = await api.createConversation({
        type: "group",
        title,
        member_ids: [...selected.keys()],
      });
      dialog.close("ok");
      onCreated(conversation);
    } catch (error) {
      showError(error.message);
    } finally {
      button.disabled = false;
    }
  });

  return function open() {
    selected.clear();
    renderSelected();
    picker.reset();
    errorBox.hidden = true;
    $("#group-title").value = "";
    dialog.showModal();
    $("#group-title").focus();
  };
}

// ----------------------------------------------------------------- details

export function setupInfoDialog({ onLeft, onChanged }) {
  const dialog = $("#info-dialog");
  wireClose(dialog);
  let currentId = null;

  const memberRow = (thread, userId) => {
    const presence = state.presence.get(userId);
    const you = userId === state.me.id;
    const canRemove = thread.conv.type === "group" && !you;
    return h(
      "li",
      { class: "member", testid: "member" },
      avatar(userId, userName(userId), { online: you ? null : isOnline(userId) }),
      h(
        "span",
        { class: "person-text" },
        h("span", { class: "person-name" }, you ? `${userName(userId)} (you)` : userName(userId)),
        h(
          "span",
          { class: "person-username" },
          you ? "" : presence?.online ? "online" : presence ? formatLastSeen(presence.last_seen) : "",
        ),
      ),
      canRemove
        ? h(
            "button",
            {
              type: "button",
              class: "button small",
              onclick: async () => {
                try {
                  await api.removeMember(thread.id, userId);
                  thread.conv.member_ids = thread.conv.member_ids.filter((id) => id !== userId);
                  onChanged();
                  render();
                } catch (error) {
                  toast(error.message);
                }
              },
            },
            "Remove",
          )
        : null,
    );
  };

  let picker = null;

  const render = () => {
    const thread = state.conversations.get(currentId);
    if (!thread) {
      dialog.close();
      return;
    }
    const content = $("#info-content");
    const isGroup = thread.conv.type === "group";
    $("#info-dialog-title").textContent = isGroup ? "Group details" : "Contact";
    const peer = directPeer(thread);
    const parts = [
      h(
        "div",
        { class: "info-hero" },
        isGroup ? null : avatar(peer ?? state.me.id, threadTitle(thread), { size: "large" }),
        h("h3", {}, threadTitle(thread)),
        h(
          "p",
          { class: "muted" },
          isGroup
            ? `Group · ${thread.conv.member_ids.length} members · created ${formatFull(thread.conv.created_at)}`
            : peer
              ? `@${state.users.get(peer)?.username ?? ""}`
              : "",
        ),
      ),
    ];
    if (isGroup) {
      parts.push(
        h("h4", { class: "section-title" }, "Members"),
        h(
          "ul",
          { class: "member-list" },
          thread.conv.member_ids.map((id) => memberRow(thread, id)),
        ),
        h("h4", { class: "section-title" }, "Add people"),
      );
      const input = h("input", {
        type: "search",
        placeholder: "Search by username",
        "aria-label": "Search people to add",
        autocomplete: "off",
        autocapitalize: "none",
        testid: "add-member-search",
      });
      const results = h("ul", { class: "people-list compact" });
      picker = peoplePicker({
        input,
        results,
        exclude: () => new Set(thread.conv.member_ids),
        onPick: async (user) => {
          try {
            const conversation = await api.addMembers(thread.id, [user.id]);
            state.users.set(user.id, user);
            thread.conv.member_ids = conversation.member_ids;
            onChanged();
            render();
          } catch (error) {
            toast(error.message);
          }
        },
      });
      parts.push(
        input,
        results,
        h(
          "div",
          { class: "dialog-footer" },
          h(
            "button",
            {
              type: "button",
              class: "button danger",
              testid: "leave-group",
              onclick: async () => {
                const ok = await confirmDialog({
                  title: "Leave group?",
                  text: `You will stop receiving messages from “${threadTitle(thread)}”.`,
                  confirm: "Leave",
                });
                if (!ok) return;
                try {
                  await api.removeMember(thread.id, state.me.id);
                  dialog.close();
                  onLeft(thread.id);
                } catch (error) {
                  toast(error.message);
                }
              },
            },
            icon("logout", { size: 18 }),
            "Leave group",
          ),
        ),
      );
    }
    setChildren(content, parts);
  };

  return {
    open(conversationId) {
      currentId = conversationId;
      render();
      dialog.showModal();
    },
    refresh() {
      if (dialog.open) render();
    },
    get openFor() {
      return dialog.open ? currentId : null;
    },
    picker: () => picker,
  };
}
