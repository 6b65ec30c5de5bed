// gocable and real Rails on one Redis, with the same channel_prefix:
//
// 1. ActionCable.server.broadcast in a Rails process (Rails' own redis
//    adapter, testdata/rails/e2e/cable.rb) reaches the official client
//    subscribed through gocable, byte for byte.
// 2. remote_connections.where(current_user:).disconnect in a Rails process
//    closes the gocable clients of that user, and no other.
// 3. A client of a real Rails ActionCable server (puma, config.ru) and a
//    client of gocable chat in one room through the shared Redis.
//
// Needs redis-server (or REDIS_URL), ruby with ruby-actioncable,
// ruby-redis and ruby-globalid, and puma. A missing one fails the file.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { closeAllClients, inbound, newClient, sleep, WebSocket } from "./support/cable.js";
import { railsBroadcast, railsCookie, railsDisconnect, requireRails, startRailsServer, stopAllRails, userGid } from "./support/rails.js";
import { startRedis, stopAllRedis, uniquePrefix, waitForNumSub } from "./support/redis.js";
import { startServer, stopAllServers } from "./support/server.js";

const here = dirname(fileURLToPath(import.meta.url));

// Alice (user 42) carries a cookie written by real Rails 6.1 (a `rails new`
// app: JSON serializer, SHA1 key derivation, AES-256-GCM); bob (user 7) one
// that ActionDispatch 6.1 writes now, with the same secret.
const aliceVector = JSON.parse(readFileSync(join(here, "..", "..", "testdata", "cookies", "rails-6.1-vectors.json"), "utf8")).vectors.find(
  (v) => v.name === "encrypted_user_id_int__json",
);
assert.equal(aliceVector.expected.value, 42, "vector encrypted_user_id_int__json holds user 42");
const secretKeyBase = aliceVector.secret_key_base;
const aliceCookie = aliceVector.cookie_header;

const chatLobby = { channel: "ChatChannel", room: "lobby" };
const lobbyIdentifier = JSON.stringify(chatLobby);
const received = (e) => e.type === "received";
const connected = (e) => e.type === "connected";
/** The data frames of identifier, as raw text. */
const rawMessages = (client, identifier) =>
  client.trace.filter(inbound((m) => m.identifier === identifier && m.type === undefined)).map((e) => e.raw);
/** The frame Rails and gocable send for payload on identifier. */
const frameOf = (identifier, payload) => `{"identifier":${JSON.stringify(identifier)},"message":${payload}}`;

const ctx = {};

before(async () => {
  requireRails();
  const [redis, bobCookie] = await Promise.all([startRedis(), railsCookie(secretKeyBase, "user_id", 7)]);
  ctx.redis = redis;
  ctx.bobCookie = bobCookie;
  ctx.prefix = uniquePrefix("rails");
  // What a Rails app's cable.yml gives both sides.
  ctx.cableEnv = { REDIS_URL: redis.url, CHANNEL_PREFIX: ctx.prefix };
  ctx.server = await startServer({
    args: [
      "--redis-url", redis.url,
      "--channel-prefix", ctx.prefix,
      "--identify", "current_user=encrypted:user_id@User",
      "--gid-app", "myapp",
      "--load-defaults", "6.1",
      "--cookies-serializer", "json",
      // The Rails app here has no ChatChannel of its own; gocable's serves.
      "--channels", "chat",
    ],
    env: { SECRET_KEY_BASE: secretKeyBase },
  });
});

after(async () => {
  closeAllClients();
  await Promise.all([stopAllRails(), stopAllServers()]);
  await stopAllRedis();
});

test("Rails broadcast reaches the official client through gocable, byte for byte", { timeout: 30000 }, async (t) => {
  const alice = newClient(ctx.server, "alice", { headers: { Cookie: aliceCookie } });
  t.after(() => alice.close());
  const sub = alice.subscribe(chatLobby);
  await sub.events.waitFor(connected, { timeout: 5000, what: "connected()" });

  // What ActionCable.server.broadcast("chat_lobby", ...) is given, as JSON
  // that Ruby parses: 12345678901234567890 is a Ruby Integer (no float).
  const messages = [
    '{"user":"rails","message":"hello from Rails","n":12345678901234567890,"f":1.5,"html":"<script>&amp;</script>","body":"caf\\u00e9 \\u2603 \\ud83d\\ude00 \\u2028","list":[1,"two",{"three":3}],"none":null,"yes":true}',
    '"hi<>"',
    "42",
    "null",
    '[1,"two",{"three":3}]',
    '{"type":"disconnect"}',
  ];
  const payloads = await railsBroadcast(ctx.cableEnv, "chat_lobby", messages);
  // What Rails published: exact integer, HTML and U+2028 escaped.
  assert.match(payloads[0], /"n":12345678901234567890,/);
  assert.match(payloads[0], /"html":"\\u003cscript\\u003e\\u0026amp;\\u003c\/script\\u003e"/);
  assert.equal(payloads[1], '"hi\\u003c\\u003e"');

  await sub.events.waitForCount(received, messages.length, { timeout: 5000, what: "Rails broadcasts" });
  await sleep(200); // anything stray
  // The frames are exactly the ones Rails would send: its payload spliced in.
  assert.deepEqual(rawMessages(alice, sub.identifier), payloads.map((p) => frameOf(lobbyIdentifier, p)));
  assert.ok(rawMessages(alice, sub.identifier)[0].includes('"n":12345678901234567890,'), "big integer kept exact on the wire");
  assert.deepEqual(
    sub.events.filter(received).map((e) => e.data),
    payloads.map((p) => JSON.parse(p)),
    "received() data",
  );
  assert.equal(sub.events.filter((e) => e.type === "disconnected").length, 0);
});

test("Rails remote_connections.where(current_user:).disconnect closes that user's gocable clients only", { timeout: 30000 }, async (t) => {
  // Alice in two tabs, bob in one.
  const alice1 = newClient(ctx.server, "alice-tab1", { headers: { Cookie: aliceCookie } });
  const alice2 = newClient(ctx.server, "alice-tab2", { headers: { Cookie: aliceCookie } });
  const bob = newClient(ctx.server, "bob", { headers: { Cookie: ctx.bobCookie } });
  t.after(() => [alice1, alice2, bob].forEach((c) => c.close()));
  const [a1, a2, b] = [alice1, alice2, bob].map((c) => c.subscribe(chatLobby));
  await Promise.all([a1, a2, b].map((s) => s.events.waitFor(connected, { timeout: 5000, what: "connected()" })));

  // gocable subscribes the internal channels without holding up welcome:
  // make sure Redis has them before Rails publishes.
  const aliceChannel = `action_cable/${userGid(42)}`;
  const bobChannel = `action_cable/${userGid(7)}`;
  await waitForNumSub(ctx.redis.url, `${ctx.prefix}:${aliceChannel}`, 1);
  await waitForNumSub(ctx.redis.url, `${ctx.prefix}:${bobChannel}`, 1);

  const used = await railsDisconnect(ctx.cableEnv, 42);
  assert.equal(used, aliceChannel, "Rails and gocable agree on alice's connection identifier");

  const disconnectFrame = '{"type":"disconnect","reason":"remote","reconnect":true}';
  for (const [client, sub] of [
    [alice1, a1],
    [alice2, a2],
  ]) {
    const frame = await client.trace.waitFor(inbound((m) => m.type === "disconnect"), { timeout: 5000, what: "disconnect frame" });
    assert.equal(frame.raw, disconnectFrame, `${client.id}: disconnect frame`);
    const close = await client.trace.waitFor((e) => e.type === "close", { timeout: 5000, what: "close" });
    assert.equal(close.code, 1000, `${client.id}: close code`);
    assert.ok(frame.t <= close.t, "the frame comes before the close");
    const d = await sub.events.waitFor((e) => e.type === "disconnected", { timeout: 3000, what: "disconnected()" });
    assert.deepEqual(d.arg, { willAttemptReconnect: true }, `${client.id}: disconnected() argument`);
  }

  // Bob is untouched: no frame, same socket, and still streaming.
  await sleep(300);
  assert.equal(bob.trace.filter(inbound((m) => m.type === "disconnect")).length, 0, "bob got no disconnect frame");
  assert.equal(bob.trace.filter((e) => e.type === "close").length, 0, "bob's socket was not closed");
  assert.equal(bob.trace.sockets.length, 1);
  assert.equal(bob.trace.sockets[0].readyState, WebSocket.OPEN);
  assert.equal(b.events.filter((e) => e.type === "disconnected").length, 0);
  const [payload] = await railsBroadcast(ctx.cableEnv, "chat_lobby", ['{"user":"rails","message":"still there, bob?"}']);
  await b.events.waitFor((e) => received(e) && e.data.message === "still there, bob?", { timeout: 5000, what: "broadcast after the disconnect" });
  assert.equal(rawMessages(bob, b.identifier).at(-1), frameOf(lobbyIdentifier, payload));

  const health = await (await fetch(`${ctx.server.httpBase}/health`)).json();
  assert.deepEqual(health, { status: "OK", pubsub: "ok", connections: 1 }, "only bob is left");
});

test("a real Rails server's client and a gocable client chat through the shared Redis", { timeout: 40000 }, async (t) => {
  const rails = await startRailsServer({ env: ctx.cableEnv });
  const onRails = newClient(rails, "on-rails");
  const onGo = newClient(ctx.server, "on-gocable", { headers: { Cookie: ctx.bobCookie } });
  t.after(async () => {
    [onRails, onGo].forEach((c) => c.close());
    await rails.stop();
  });
  const r = onRails.subscribe(chatLobby);
  const g = onGo.subscribe(chatLobby);
  // Both servers confirm only once Redis acknowledged the SUBSCRIBE.
  await Promise.all([r, g].map((s) => s.events.waitFor(connected, { timeout: 10000, what: "connected()" })));
  assert.deepEqual(onRails.trace.filter(inbound((m) => m.type === "welcome")).map((e) => e.raw), ['{"type":"welcome"}'], "a real Rails server");

  // gocable's ChatChannel speaks as the connection's identifier.
  const fromGo = { user: userGid(7), message: "from gocable <&> café 😀" };
  g.subscription.perform("speak", { user: "not bob", message: fromGo.message });
  await Promise.all([r, g].map((s) => s.events.waitForCount(received, 1, { timeout: 5000, what: "gocable's message" })));
  // Rails' ChatChannel#speak broadcasts {user, message} as sent.
  const fromRails = { user: "rails-user", message: "from Rails <&> ☃" };
  r.subscription.perform("speak", { ...fromRails }); // perform() adds "action" to its argument
  await Promise.all([r, g].map((s) => s.events.waitForCount(received, 2, { timeout: 5000, what: "Rails' message" })));

  await sleep(200);
  for (const s of [r, g]) assert.deepEqual(s.events.filter(received).map((e) => e.data), [fromGo, fromRails]);
  // Both servers wrote the same bytes for each message.
  const railsFrames = rawMessages(onRails, r.identifier);
  assert.equal(railsFrames.length, 2);
  assert.deepEqual(rawMessages(onGo, g.identifier), railsFrames, "gocable's frames equal the Rails server's");
  assert.ok(railsFrames[0].includes("\\u003c\\u0026\\u003e"), "HTML-escaped as Rails does");
  for (const c of [onRails, onGo]) assert.equal(c.trace.filter((e) => e.type === "close").length, 0, `${c.id} stayed connected`);
});
