// Signing in or registering (the form shown before the app), and signing out.

import { api, session } from "./api.js";
import { confirmDialog } from "./dialogs.js";
import { $ } from "./dom.js";
import { realtime } from "./realtime.js";

// Why the last session ended, shown on the sign-in form after the reload.
const SIGNED_OUT_NOTE = "chat.signed_out_note";

const FIELD_NAMES = { username: "Username", password: "Password", email: "Email", display_name: "Display name" };

/** Shows the sign-in form; `onSignedIn()` runs once the session is saved. */
export function showSignIn(onSignedIn) {
  $("#splash").hidden = true;
  $("#app").hidden = true;
  $("#auth-screen").hidden = false;
  const form = $("#auth-form");
  const note = sessionStorage.getItem(SIGNED_OUT_NOTE);
  sessionStorage.removeItem(SIGNED_OUT_NOTE);
  setAuthMode("login");
  if (note) showAuthError(note);
  $("#tab-login").onclick = () => setAuthMode("login");
  $("#tab-register").onclick = () => setAuthMode("register");
  form.onsubmit = (event) => submitAuth(event, onSignedIn);
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

async function submitAuth(event, onSignedIn) {
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
    await onSignedIn();
  } catch (error) {
    showAuthError(describeError(error));
  } finally {
    button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

/** Asks, then ends the session here and on the server. */
export async function signOut() {
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

/** The server ended the session (or another tab did): back to the form, with `note`. */
export function signOutLocally(note) {
  realtime?.stop();
  session.clear();
  if (note) sessionStorage.setItem(SIGNED_OUT_NOTE, note);
  location.replace(location.pathname);
}
