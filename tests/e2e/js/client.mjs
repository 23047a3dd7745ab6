// The official socket.io-client, unmodified, against two gateway instances.
//
// Alice connects to gateway A and Bob to gateway B with the client's default options
// (HTTP long-polling first, then the upgrade to WebSocket). Alice sends a message with
// an acknowledgement, Bob receives it as `message:new`, Bob calls `sync`. A few wrong
// calls show the error shapes. Everything observed is printed as one JSON object.
//
// Input (environment): NPM_PROJECT (the npm project holding socket.io-client),
// GATEWAY_A, GATEWAY_B, TOKEN_A, TOKEN_B, CONVERSATION_ID.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const REQUIRED = ["NPM_PROJECT", "GATEWAY_A", "GATEWAY_B", "TOKEN_A", "TOKEN_B", "CONVERSATION_ID"];
const env = process.env;
for (const name of REQUIRED) {
  if (!env[name]) {
    console.error(`client.mjs: ${name} is not set`);
    process.exit(2);
  }
}

const require = createRequire(path.join(env.NPM_PROJECT, "package.json"));
const { io } = require("socket.io-client");
const clientVersion = JSON.parse(
  readFileSync(require.resolve("socket.io-client/package.json"), "utf8"),
).version;

const TIMEOUT_MS = 10000;
const deadline = setTimeout(() => {
  console.error("client.mjs: gave up after 45 s");
  process.exit(3);
}, 45000);

const openedWith = new Map();

function connect(url, token) {
  return new Promise((resolve, reject) => {
    const socket = io(url, { auth: { token }, reconnection: false, timeout: TIMEOUT_MS });
    // The transport the Engine.IO session opened with, before any upgrade.
    socket.io.once("open", () => openedWith.set(socket, socket.io.engine.transport.name));
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      socket.close();
      reject(new Error(`connect to ${url} failed: ${err.message}`));
    });
  });
}

function refusal(url, token) {
  return new Promise((resolve, reject) => {
    const socket = io(url, { auth: { token }, reconnection: false, timeout: TIMEOUT_MS });
    socket.once("connect", () => {
      socket.close();
      reject(new Error("a connection with a bad token was accepted"));
    });
    socket.once("connect_error", (err) => {
      socket.close();
      resolve({ message: err.message, data: err.data ?? null });
    });
  });
}

function next(socket, event, predicate) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} in ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    const listener = (payload) => {
      if (predicate(payload)) {
        clearTimeout(timer);
        socket.off(event, listener);
        resolve(payload);
      }
    };
    socket.on(event, listener);
  });
}

function upgraded(socket) {
  // The default transports start with polling; report what it settles on.
  return new Promise((resolve) => {
    const engine = socket.io.engine;
    if (engine.transport.name === "websocket") return resolve("websocket");
    const timer = setTimeout(() => resolve(engine.transport.name), 3000);
    engine.once("upgrade", (transport) => {
      clearTimeout(timer);
      resolve(transport.name);
    });
  });
}

async function main() {
  const refused = await refusal(env.GATEWAY_A, "not-a-token");
  const alice = await connect(env.GATEWAY_A, env.TOKEN_A);
  const bob = await connect(env.GATEWAY_B, env.TOKEN_B);
  const firstTransport = { alice: openedWith.get(alice), bob: openedWith.get(bob) };

  const payload = {
    conversation_id: env.CONVERSATION_ID,
    client_msg_id: `js-${process.pid}-${Date.now()}`,
    text: "hello from node",
  };
  const sameMessage = (m) => m.client_msg_id === payload.client_msg_id;
  const atBob = next(bob, "message:new", sameMessage);
  const atAlice = next(alice, "message:new", sameMessage);
  const ack = await alice.timeout(TIMEOUT_MS).emitWithAck("message:send", payload);
  const received = await atBob;
  const echoed = await atAlice;
  const retried = await alice.timeout(TIMEOUT_MS).emitWithAck("message:send", payload);

  const sync = await bob.timeout(TIMEOUT_MS).emitWithAck("sync", { cursors: {} });
  const bad = await alice.timeout(TIMEOUT_MS).emitWithAck("message:send", { conversation_id: 5 });
  const unknown = await alice.timeout(TIMEOUT_MS).emitWithAck("no:such:event", {});
  const transports = { alice: await upgraded(alice), bob: await upgraded(bob) };
  // Still usable after the upgrade.
  const presence = await bob.timeout(TIMEOUT_MS).emitWithAck("presence:query", {
    user_ids: [received.sender_id],
  });

  alice.close();
  bob.close();
  return {
    client_version: clientVersion,
    first_transport: firstTransport,
    transports,
    refused,
    ack,
    received,
    echoed,
    retried,
    sync,
    bad,
    unknown,
    presence,
  };
}

main().then(
  (result) => {
    clearTimeout(deadline);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (err) => {
    clearTimeout(deadline);
    console.error(`client.mjs: ${err.stack || err}`);
    process.exit(1);
  },
);
