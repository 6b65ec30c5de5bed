// Two gocable processes on one Redis, as two app servers behind a load
// balancer: node A configured by flags (--redis-url, --channel-prefix),
// node B by a Rails config/cable.yml (--cable-config, --env production,
// REDIS_URL in its environment). A Rails process (Rails' own redis
// adapter, testdata/rails/e2e/cable.rb) reads the same cable.yml.
//
// Needs redis-server (or REDIS_URL) and ruby with ruby-actioncable and
// ruby-redis. A missing one fails the file.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { closeAllClients, inbound, newClient, sleep } from "./support/cable.js";
import { railsBroadcast, requireRails } from "./support/rails.js";
import { startRedis, stopAllRedis, uniquePrefix } from "./support/redis.js";
import { startServer, stopAllServers } from "./support/server.js";

const chatLobby = { channel: "ChatChannel", room: "lobby" };
const received = (e) => e.type === "received";
const connected = (e) => e.type === "connected";
const rawMessages = (client, identifier) =>
  client.trace.filter(inbound((m) => m.identifier === identifier && m.type === undefined)).map((e) => e.raw);

const ctx = {};

before(async () => {
  requireRails();
  ctx.redis = await startRedis();
  ctx.prefix = uniquePrefix("nodes");
  ctx.dir = mkdtempSync(join(tmpdir(), "gocable-nodes-"));
  ctx.cableYml = join(ctx.dir, "cable.yml");
  // The file `rails new` generates, with this run's prefix.
  writeFileSync(
    ctx.cableYml,
    [
      "development:",
      "  adapter: async",
      "",
      "test:",
      "  adapter: test",
      "",
      "production:",
      "  adapter: redis",
      '  url: <%= ENV.fetch("REDIS_URL") { "redis://localhost:6379/1" } %>',
      `  channel_prefix: ${ctx.prefix}`,
      "",
    ].join("\n"),
  );
  const railsAppEnv = { REDIS_URL: ctx.redis.url, CABLE_CONFIG: ctx.cableYml, RAILS_ENV: "production" };
  ctx.rubyEnv = railsAppEnv;
  [ctx.a, ctx.b] = await Promise.all([
    startServer({ args: ["--redis-url", ctx.redis.url, "--channel-prefix", ctx.prefix, "--channels", "chat"] }),
    startServer({ args: ["--cable-config", ctx.cableYml, "--env", "production"], env: { REDIS_URL: ctx.redis.url, GOCABLE_CHANNELS: "chat" } }),
  ]);
  for (const [name, srv] of [
    ["A", ctx.a],
    ["B", ctx.b],
  ]) {
    const lines = srv.logLines(/gocable: redis pub\/sub/);
    assert.equal(lines.length, 1, `node ${name} logs its redis pub/sub:\n${srv.output}`);
    assert.ok(lines[0].includes(`channel_prefix=${ctx.prefix}`), `node ${name}: ${lines[0]}`);
    assert.ok(lines[0].includes(new URL(ctx.redis.url).host), `node ${name} uses ${ctx.redis.url}: ${lines[0]}`);
  }
});

after(async () => {
  closeAllClients();
  await stopAllServers();
  await stopAllRedis();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

/** Two clients on each node in lobby, and one on B in room other. */
async function lobbyClients(t) {
  const clients = [
    ["a1", ctx.a],
    ["a2", ctx.a],
    ["b1", ctx.b],
    ["b2", ctx.b],
  ].map(([name, srv]) => {
    const c = newClient(srv, name);
    return { c, sub: c.subscribe(chatLobby) };
  });
  const otherClient = newClient(ctx.b, "b-other");
  const other = { c: otherClient, sub: otherClient.subscribe({ channel: "ChatChannel", room: "other" }) };
  t.after(() => [...clients, other].forEach(({ c }) => c.close()));
  await Promise.all([...clients, other].map(({ sub }) => sub.events.waitFor(connected, { timeout: 5000, what: "connected()" })));
  return { clients, other };
}

test("a speak on either node and a Rails broadcast reach the clients of both nodes", { timeout: 30000 }, async (t) => {
  const { clients, other } = await lobbyClients(t);
  const [a1, , b1] = clients;
  const expected = [];
  const all = async (what) =>
    Promise.all(clients.map(({ sub }) => sub.events.waitForCount(received, expected.length, { timeout: 5000, what })));

  a1.sub.subscription.perform("speak", { user: "a1", message: "from node A <&>" });
  expected.push({ user: "a1", message: "from node A <&>" });
  await all("the message spoken on A");

  b1.sub.subscription.perform("speak", { user: "b1", message: "from node B ☃" });
  expected.push({ user: "b1", message: "from node B ☃" });
  await all("the message spoken on B");

  const [payload] = await railsBroadcast(ctx.rubyEnv, "chat_lobby", ['{"user":"rails","message":"from Rails","n":12345678901234567890}']);
  expected.push(JSON.parse(payload));
  await all("the Rails broadcast");

  await sleep(300); // duplicates would show up by now
  const frames0 = rawMessages(clients[0].c, clients[0].sub.identifier);
  assert.equal(frames0.length, 3);
  assert.ok(frames0[2].endsWith(`"message":${payload}}`), "the Rails payload, byte for byte");
  for (const { c, sub } of clients) {
    assert.deepEqual(sub.events.filter(received).map((e) => e.data), expected, `${c.id}: exactly once, in order`);
    assert.deepEqual(rawMessages(c, sub.identifier), frames0, `${c.id}: the same bytes on both nodes`);
    assert.equal(c.trace.filter((e) => e.type === "close").length, 0);
  }
  assert.deepEqual(other.sub.events.filter(received), [], "room other heard nothing");

  for (const [srv, n] of [
    [ctx.a, 2],
    [ctx.b, 3],
  ]) {
    const health = await (await fetch(`${srv.httpBase}/health`)).json();
    assert.deepEqual(health, { status: "OK", pubsub: "ok", connections: n });
  }
});

test("bursts spoken on both nodes at once: every client gets all, each speaker's in order", { timeout: 30000 }, async (t) => {
  const { clients } = await lobbyClients(t);
  const [a1, , b1] = clients;
  const n = 25;
  for (let i = 0; i < n; i++) {
    a1.sub.subscription.perform("speak", { user: "a1", message: i });
    b1.sub.subscription.perform("speak", { user: "b1", message: i });
  }
  await Promise.all(clients.map(({ sub }) => sub.events.waitForCount(received, 2 * n, { timeout: 10000, what: "both bursts" })));
  await sleep(300);
  const seq = (list, user) => list.filter((d) => d.user === user).map((d) => d.message);
  const order = [...Array(n).keys()];
  let first;
  for (const { c, sub } of clients) {
    const data = sub.events.filter(received).map((e) => e.data);
    assert.equal(data.length, 2 * n, `${c.id}: no duplicates`);
    assert.deepEqual(seq(data, "a1"), order, `${c.id}: a1's messages in order`);
    assert.deepEqual(seq(data, "b1"), order, `${c.id}: b1's messages in order`);
    // One Redis channel: every subscriber sees one global order.
    first ??= data;
    assert.deepEqual(data, first, `${c.id}: the same interleaving as ${clients[0].c.id}`);
  }
});
