// REST access to the auth and message services, and the session's tokens.
//
// Tokens live in localStorage so that a reload (or another tab) stays signed
// in. A refresh token is single-use: presenting one that another tab already
// rotated revokes the whole login, so refreshes are serialised across tabs
// with a Web Lock and a tab first checks whether another one refreshed already.

const KEYS = {
  access: "chat.access_token",
  refresh: "chat.refresh_token",
  expiresAt: "chat.access_expires_at",
  user: "chat.user",
};

/** The error shape of the contract, for REST answers and socket acks alike. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || "Something went wrong.");
    this.status = status;
    this.code = code || "error";
    this.details = details ?? null;
  }

  static from(body, status = 0) {
    const error = body?.error ?? {};
    return new ApiError(status, error.code, error.message, error.details);
  }
}

const NETWORK_MESSAGE = "Can't reach the chat service. Check your connection and try again.";

const config = { auth_url: "", message_url: "" };

export async function loadConfig() {
  try {
    const response = await fetch("/config.json", { cache: "no-store" });
    if (response.ok) Object.assign(config, await response.json());
  } catch {
    // Same origin for everything is the right default behind the load balancer.
  }
}

function base(service) {
  const url = service === "auth" ? config.auth_url : config.message_url;
  return (url || "").replace(/\/+$/, "");
}

// ---------------------------------------------------------------- session

export const events = new EventTarget();

export const session = {
  get accessToken() {
    return localStorage.getItem(KEYS.access);
  },
  get refreshToken() {
    return localStorage.getItem(KEYS.refresh);
  },
  get expiresAt() {
    return Number(localStorage.getItem(KEYS.expiresAt) || 0);
  },
  get user() {
    try {
      return JSON.parse(localStorage.getItem(KEYS.user) || "null");
    } catch {
      return null;
    }
  },
  set user(user) {
    localStorage.setItem(KEYS.user, JSON.stringify(user));
  },
  get signedIn() {
    return Boolean(this.refreshToken);
  },
  save(answer) {
    localStorage.setItem(KEYS.access, answer.access_token);
    localStorage.setItem(KEYS.refresh, answer.refresh_token);
    localStorage.setItem(KEYS.expiresAt, String(Date.now() + answer.expires_in * 1000));
    if (answer.user) this.user = answer.user;
  },
  clear() {
    for (const key of Object.values(KEYS)) localStorage.removeItem(key);
  },
};

// Another tab signing out or refreshing changes localStorage under us.
window.addEventListener("storage", (event) => {
  if (event.key === KEYS.refresh && !event.newValue) {
    events.dispatchEvent(new Event("signedout"));
  } else if (event.key === KEYS.access && event.newValue) {
    events.dispatchEvent(new CustomEvent("tokens", { detail: event.newValue }));
    scheduleRefresh();
  }
});

// ---------------------------------------------------------------- refresh

let refreshing = null;
let refreshTimer = 0;

/** A fresh access token; one refresh at a time per tab, and across tabs. */
export function refreshTokens() {
  refreshing ??= refreshOnce().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function refreshOnce() {
  const heldBefore = session.refreshToken;
  const run = async () => {
    const current = session.refreshToken;
    if (!current) throw new ApiError(401, "unauthorized", "You are signed out.");
    if (current !== heldBefore && session.expiresAt - Date.now() > 60_000) {
      return session.accessToken; // another tab refreshed while we waited
    }
    const answer = await post("auth", "/v1/auth/refresh", { refresh_token: current });
    session.save(answer);
    scheduleRefresh();
    events.dispatchEvent(new CustomEvent("tokens", { detail: answer.access_token }));
    return answer.access_token;
  };
  try {
    return await (navigator.locks ? navigator.locks.request("chat-token-refresh", run) : run());
  } catch (error) {
    if (error.status === 401) {
      session.clear();
      events.dispatchEvent(new Event("signedout"));
    }
    throw error;
  }
}

/** Refreshes a minute before expiry (at 80% of a lifetime under two minutes). */
export function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!session.signedIn) return;
  const left = session.expiresAt - Date.now();
  const delay = Math.max(1000, left > 120_000 ? left - 60_000 : left * 0.8);
  refreshTimer = setTimeout(async () => {
    try {
      await refreshTokens();
    } catch (error) {
      if (error.status !== 401) {
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(scheduleRefresh, 10_000);
      }
    }
  }, delay);
}

// Timers sleep in background tabs and laptops: check again on return.
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && session.signedIn) {
    if (session.expiresAt - Date.now() < 60_000) refreshTokens().catch(() => {});
    else scheduleRefresh();
  }
});

/** A valid access token, refreshing first when it is about to expire. */
export async function accessToken() {
  if (session.expiresAt - Date.now() < 5_000) return refreshTokens();
  return session.accessToken;
}

// ---------------------------------------------------------------- requests

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: fall through to a generic error
  }
  if (body?.error) return ApiError.from(body, response.status);
  const fallback = {
    413: ["payload_too_large", "That file is too large."],
    415: ["unsupported_media_type", "That type of file can't be sent."],
    429: ["rate_limited", "Too many requests. Wait a moment and try again."],
  }[response.status] ?? ["http_error", `The server answered ${response.status}.`];
  return new ApiError(response.status, fallback[0], fallback[1]);
}

async function send(url, init) {
  try {
    return await fetch(url, init);
  } catch {
    throw new ApiError(0, "network_error", NETWORK_MESSAGE);
  }
}

/** A call without a bearer token (register, login, refresh, logout). */
async function post(service, path, body) {
  const response = await send(base(service) + path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

/** An authenticated call; a 401 refreshes the tokens once and tries again. */
async function request(service, path, { method = "GET", query, json, form, raw } = {}) {
  let url = base(service) + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value != null && value !== "") params.set(key, String(value));
    }
    if ([...params].length) url += `?${params}`;
  }
  for (let attempt = 0; ; attempt++) {
    const headers = { Authorization: `Bearer ${await accessToken()}` };
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form) {
      body = form;
    }
    const response = await send(url, { method, headers, body });
    if (response.status === 401 && attempt === 0) {
      await refreshTokens();
      continue;
    }
    if (!response.ok) throw await errorOf(response);
    if (raw) return response;
    return response.status === 204 ? null : response.json();
  }
}

const enc = encodeURIComponent;

export const api = {
  register: (body) => post("auth", "/v1/auth/register", body),
  login: (body) => post("auth", "/v1/auth/login", body),
  logout: (refreshToken) => post("auth", "/v1/auth/logout", { refresh_token: refreshToken }),
  me: () => request("auth", "/v1/users/me"),
  user: (id) => request("auth", `/v1/users/${enc(id)}`),
  searchUsers: (q, limit = 20) => request("auth", "/v1/users", { query: { q, limit } }),

  conversations: (cursor, limit = 50) =>
    request("message", "/v1/conversations", { query: { limit, cursor } }),
  conversation: (id) => request("message", `/v1/conversations/${enc(id)}`),
  createConversation: (body) => request("message", "/v1/conversations", { method: "POST", json: body }),
  addMembers: (id, userIds) =>
    request("message", `/v1/conversations/${enc(id)}/members`, {
      method: "POST",
      json: { user_ids: userIds },
    }),
  removeMember: (id, userId) =>
    request("message", `/v1/conversations/${enc(id)}/members/${enc(userId)}`, { method: "DELETE" }),
  messages: (id, query) => request("message", `/v1/conversations/${enc(id)}/messages`, { query }),
  editMessage: (conversationId, messageId, text) =>
    request("message", `/v1/conversations/${enc(conversationId)}/messages/${enc(messageId)}`, {
      method: "PATCH",
      json: { text },
    }),
  deleteMessage: (conversationId, messageId) =>
    request("message", `/v1/conversations/${enc(conversationId)}/messages/${enc(messageId)}`, {
      method: "DELETE",
    }),
  upload: (file) => {
    const form = new FormData();
    form.append("file", file, file.name);
    return request("message", "/v1/attachments", { method: "POST", form });
  },
  attachment: (id) => request("message", `/v1/attachments/${enc(id)}`, { raw: true }),
};
