// The Socket.IO connection: connecting with the access token, acknowledged
// emits with a timeout, and recovery from refused or dropped connections.

import { ApiError, refreshTokens, session } from "./api.js";

const SERVER_EVENTS = [
  "message:new",
  "message:updated",
  "message:deleted",
  "receipt",
  "typing",
  "presence",
  "conversation:updated",
  "sync:required",
];

/** The page's one connection, once `startRealtime` made it after sign-in; null before. */
export let realtime = null;

/** Makes the connection every module reaches as `realtime`, and connects it. */
export function startRealtime(handlers) {
  realtime = createRealtime(handlers);
  realtime.connect();
  return realtime;
}

/**
 * `onStatus(state)` gets "connecting", "connected", "reconnecting" or
 * "offline"; `onConnect()` runs after every (re)connection, which is where
 * the caller syncs; `onEvent(name, payload)` gets the server's events.
 */
function createRealtime({ onStatus, onConnect, onEvent, onSignedOut }) {
  // The vendored UMD build of socket.io-client defines `io`.
  const socket = window.io({
    path: "/socket.io",
    transports: ["websocket"],
    auth: { token: session.accessToken },
    autoConnect: false,
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
    randomizationFactor: 0.5,
  });

  let failures = 0;
  let retryTimer = 0;
  let stopped = false;

  const retryLater = () => {
    clearTimeout(retryTimer);
    const delay = Math.min(10_000, 500 * 2 ** Math.min(failures, 5)) * (0.5 + Math.random());
    retryTimer = setTimeout(() => {
      if (!stopped && !socket.connected) socket.connect();
    }, delay);
  };

  socket.on("connect", () => {
    failures = 0;
    onStatus("connected");
    onConnect();
  });

  socket.on("connect_error", async (error) => {
    if (stopped) return;
    failures += 1;
    onStatus(navigator.onLine === false ? "offline" : "reconnecting");
    if (error?.data?.error?.code === "unauthorized") {
      // Refused by the server: the client will not retry on its own. Get a
      // new access token and connect with it.
      try {
        socket.auth = { token: await refreshTokens() };
        if (failures > 1) retryLater();
        else socket.connect();
      } catch (refreshError) {
        if (refreshError.status === 401) onSignedOut();
        else retryLater();
      }
    } else if (!socket.active) {
      retryLater();
    }
  });

  socket.on("disconnect", (reason) => {
    if (stopped) return;
    onStatus(navigator.onLine === false ? "offline" : "reconnecting");
    // The server closed us on purpose (a gateway draining, say): the client
    // does not reconnect by itself then; do it, spread out in time.
    if (reason === "io server disconnect") {
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => socket.connect(), 200 + Math.random() * 1500);
    }
  });

  for (const name of SERVER_EVENTS) {
    socket.on(name, (payload) => onEvent(name, payload));
  }

  window.addEventListener("online", () => {
    if (!stopped && !socket.connected) {
      onStatus("reconnecting");
      socket.connect();
    }
  });
  window.addEventListener("offline", () => {
    if (!socket.connected) onStatus("offline");
  });

  /** Emits and resolves with the `{ok: true, ...}` ack; rejects with an ApiError. */
  function request(event, payload, timeout = 10_000) {
    return new Promise((resolve, reject) => {
      socket.timeout(timeout).emit(event, payload, (error, answer) => {
        if (error) {
          reject(new ApiError(0, "timeout", "The server did not answer in time."));
        } else if (!answer || answer.ok !== true) {
          reject(ApiError.from(answer));
        } else {
          resolve(answer);
        }
      });
    });
  }

  /** Fire-and-forget signals (typing) are dropped rather than queued while offline. */
  function signal(event, payload) {
    if (!socket.connected) return;
    socket.volatile.timeout(5000).emit(event, payload, () => {});
  }

  /** After a token refresh: future reconnects use it, the live connection is told. */
  async function updateToken(token) {
    socket.auth = { token };
    if (socket.connected) {
      try {
        await request("auth:refresh", { token });
      } catch {
        // The connection will be refused at its next reconnect and recover then.
      }
    }
  }

  return {
    get connected() {
      return socket.connected;
    },
    connect() {
      stopped = false;
      onStatus("connecting");
      socket.connect();
    },
    stop() {
      stopped = true;
      clearTimeout(retryTimer);
      socket.disconnect();
    },
    request,
    signal,
    updateToken,
  };
}
