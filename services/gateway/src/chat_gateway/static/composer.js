// The composer: the message box and its drafts, the typing signal, edits
// and replies, attachments to send, and sending itself (with its retries).

import { api } from "./api.js";
import { rememberLocalFile } from "./attachments.js";
import { confirmDialog, toast } from "./dialogs.js";
import { $ } from "./dom.js";
import { realtime } from "./realtime.js";
import { onMessage } from "./server-events.js";
import { mergeMessage, openThread, state } from "./store.js";
import { render, ui } from "./view.js";

const SEND_TIMEOUT_MS = 15_000;
// A send the server shed (`unavailable`, `rate_limited`) or could not settle
// in time (`timeout`) is sent again on its own, this often, before it shows
// as failed.
const AUTO_RETRIES = 3;
const TIMEOUT_RETRY_MS = 1_000; // doubled at each attempt
const TYPING_RENEW_MS = 2_500;
const TYPING_IDLE_MS = 3_000;

const typingSignal = { conversationId: null, lastSent: 0, idleTimer: 0 };

export function setupComposer() {
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
  acceptDroppedFiles();
}

/** Files dropped on the conversation are attached. */
function acceptDroppedFiles() {
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

function autosize(input) {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

export function saveDraft(thread) {
  thread.draft.text = $("#message-input").value;
}

export function restoreDraft(thread) {
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

export function stopTypingSignal() {
  clearTimeout(typingSignal.idleTimer);
  if (!typingSignal.conversationId) return;
  realtime?.signal("typing", { conversation_id: typingSignal.conversationId, is_typing: false });
  typingSignal.conversationId = null;
  typingSignal.lastSent = 0;
}

export function beginComposerMode(kind, message) {
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
    if (thread.pending.get(local.client_msg_id) !== local) return;
    const wait = autoRetryDelay(error, local.retries ?? 0);
    if (wait !== null) {
      // Still "sending": the person has nothing to decide yet.
      local.retries = (local.retries ?? 0) + 1;
      setTimeout(() => {
        // Unless its event settled it meanwhile, or the person discarded it.
        if (thread.pending.get(local.client_msg_id) === local) deliver(thread, local);
      }, wait);
      return;
    }
    local.status = "failed";
    local.error = error.message;
  }
  render();
}

/**
 * How long to wait before sending again on its own, or null to show the send
 * as failed. `unavailable` and `rate_limited` stored nothing and say when to
 * come back; `timeout` (from the server, or no acknowledgement at all) may
 * have stored it, which the same client_msg_id makes harmless.
 */
function autoRetryDelay(error, retries) {
  if (retries >= AUTO_RETRIES) return null;
  const wait = error.details?.retry_after;
  if ((error.code === "unavailable" || error.code === "rate_limited") && wait) return wait * 1000;
  if (error.code === "timeout") return TIMEOUT_RETRY_MS * 2 ** retries * (0.75 + Math.random() / 2);
  return null;
}

export function retry(clientMsgId) {
  const thread = openThread();
  const local = thread?.pending.get(clientMsgId);
  if (!local) return;
  local.retries = 0;
  deliver(thread, local);
}

export function discard(clientMsgId) {
  openThread()?.pending.delete(clientMsgId);
  render();
}

/** Here because deleting the message being edited or replied to ends that. */
export async function deleteMessage(message) {
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

export function removeFile(localId) {
  const thread = openThread();
  if (!thread) return;
  const entry = thread.draft.files.find((file) => file.localId === localId);
  if (entry?.previewUrl) URL.revokeObjectURL(entry.previewUrl);
  thread.draft.files = thread.draft.files.filter((file) => file.localId !== localId);
  render();
}
