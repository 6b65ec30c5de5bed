// Redis crashes under a live gocable: 20 official clients in one room, one
// of them speaking every 100 ms (each message goes out through Redis and
// comes back through gocable's subscriber connection). redis-server is
// SIGKILLed, stays down 10 s, and is started again on the same port.
//
// gocable must stay up and keep every client connected (the client's
// ConnectionMonitor only sees gocable's pings, which don't depend on
// Redis), report the outage on /health (503, pubsub "down", then 200 "ok"),
// and deliver broadcasts again within 2 s of Redis answering again.
//
// This file always starts its own redis-server (even with REDIS_URL set):
// it kills it. A missing redis-server fails the file.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { closeAllClients, newClient, sleep } from "./support/cable.js";
import { startRedis, stopAllRedis, uniquePrefix } from "./support/redis.js";
import { startServer, stopAllServers } from "./support/server.js";

const N = 20;
const SPEAK_EVERY_MS = 100;
const OUTAGE_MS = 10000;
const RECOVERY_BUDGET_MS = 4000; // backoff at most 1 s apart, plus slack for a loaded CI machine

const chatLobby = { channel: "ChatChannel", room: "lobby" };
const received = (e) => e.type === "received";
const connected = (e) => e.type === "connected";

const ctx = {};

before(async () => {
  ctx.redis = await startRedis({ own: true });
  ctx.prefix = uniquePrefix("chaos");
  ctx.server = await startServer({ args: ["--redis-url", ctx.redis.url, "--channel-prefix", ctx.prefix, "--channels", "chat"] });
});

after(async () => {
  clearInterval(ctx.speaker);
  clearInterval(ctx.poller);
  closeAllClients();
  await stopAllServers();
  await stopAllRedis();
});

/** Polls /health every 100 ms into samples until stopped. */
function pollHealth(server, samples) {
  let busy = false;
  return setInterval(async () => {
    if (busy) return;
    busy = true;
    const t = Date.now();
    try {
      const res = await fetch(`${server.httpBase}/health`, { signal: AbortSignal.timeout(3000) });
      samples.push({ t, code: res.status, ...(await res.json()) });
    } catch (err) {
      samples.push({ t, error: err.message });
    } finally {
      busy = false;
    }
  }, 100);
}

test(`${N} clients ride out a ${OUTAGE_MS / 1000} s Redis crash`, { timeout: 50000 }, async (t) => {
  const clients = Array.from({ length: N }, (_, i) => {
    const c = newClient(ctx.server, `c${i}`);
    return { c, sub: c.subscribe(chatLobby) };
  });
  await Promise.all(clients.map(({ sub }) => sub.events.waitFor(connected, { timeout: 10000, what: "connected()" })));

  const health = [];
  ctx.poller = pollHealth(ctx.server, health);

  // The speaker: message i is spoken at spokenAt[i].
  const speaker = clients[0].sub.subscription;
  const spokenAt = [];
  ctx.speaker = setInterval(() => {
    spokenAt.push(Date.now());
    speaker.perform("speak", { user: "speaker", message: spokenAt.length - 1 });
  }, SPEAK_EVERY_MS);
  const seqOf = (e) => e.data.message;

  // Steady flow first.
  await Promise.all(clients.map(({ sub }) => sub.events.waitForCount(received, 5, { timeout: 5000, what: "the first broadcasts" })));

  const tKill = Date.now();
  await ctx.redis.kill();
  await sleep(OUTAGE_MS);
  assert.ok(ctx.server.running, `gocable died during the outage:\n${ctx.server.output.slice(-3000)}`);
  await ctx.redis.restart();
  const tBack = Date.now(); // redis-server answers PING again
  const seqBack = spokenAt.length; // the first message spoken with Redis back

  // Broadcasts flow again: every client gets a message spoken after tBack.
  const firstNew = await Promise.all(
    clients.map(({ sub }) =>
      sub.events.waitFor((e) => received(e) && seqOf(e) >= seqBack, { timeout: 10000, what: "a broadcast after Redis came back" }),
    ),
  );
  const recovery = Math.max(...firstNew.map((e) => e.t)) - tBack;
  const firstAny = clients.map(({ sub }) => sub.events.filter((e) => received(e) && e.t >= tBack)[0]);
  const recoveryAny = Math.max(...firstAny.map((e) => e.t)) - tBack;

  // Let it run a little, then stop speaking and let the last ones land.
  await sleep(1000);
  clearInterval(ctx.speaker);
  const spoken = spokenAt.length;
  await Promise.all(
    clients.map(({ sub }) =>
      sub.events.waitFor((e) => received(e) && seqOf(e) === spoken - 1, { timeout: 5000, what: "the last broadcast" }),
    ),
  );
  await sleep(300);
  clearInterval(ctx.poller);

  // What the clients saw of the outage.
  const seqs = clients[0].sub.events.filter(received).map(seqOf);
  const lostDuringOutage = spokenAt.filter((t0, i) => t0 >= tKill && i < seqBack && !seqs.includes(i)).length;
  const spokenDuringOutage = spokenAt.filter((t0, i) => t0 >= tKill && i < seqBack).length;
  const lateFromOutage = clients[0].sub.events.filter((e) => received(e) && e.t >= tBack && seqOf(e) < seqBack).length;
  const downSamples = health.filter((h) => h.pubsub === "down");
  const firstDown = downSamples[0];
  const lastDown = downSamples.at(-1);
  const firstOkAfter = health.find((h) => h.t > tBack && h.pubsub === "ok");
  const reconnectLog = ctx.server.logLines(/redispubsub: reconnected/);
  const figures = {
    clients: N,
    outage_ms: tBack - tKill,
    health_down_after_kill_ms: firstDown && firstDown.t - tKill,
    health_ok_after_redis_back_ms: firstOkAfter && firstOkAfter.t - tBack,
    recovery_ms_first_broadcast_spoken_after_back_on_all_clients: recovery,
    recovery_ms_first_delivery_of_any_broadcast_on_all_clients: recoveryAny,
    spoken_during_outage: spokenDuringOutage,
    lost_during_outage: lostDuringOutage,
    delivered_late_after_outage: lateFromOutage,
    gocable_log: reconnectLog.map((l) => l.trim()),
  };
  for (const [k, v] of Object.entries(figures)) t.diagnostic(`${k}: ${JSON.stringify(v)}`);

  // gocable lived through it and said so on /health.
  assert.ok(ctx.server.running, "gocable is alive");
  assert.deepEqual(health.filter((h) => h.error), [], "/health always answered");
  assert.ok(firstDown, `/health never reported pubsub "down": ${JSON.stringify(health.slice(0, 5))}…`);
  assert.ok(firstDown.t >= tKill && lastDown.t < tBack + RECOVERY_BUDGET_MS, "down only around the outage");
  assert.ok(downSamples.every((h) => h.code === 503 && h.status === "Service Unavailable"), "down is a 503");
  assert.ok(firstOkAfter, '/health never came back to "ok"');
  assert.deepEqual(health.at(-1), { ...health.at(-1), code: 200, status: "OK", pubsub: "ok", connections: N });
  assert.ok(health.every((h) => h.connections === N), `gocable kept all ${N} connections throughout`);
  assert.equal(reconnectLog.length, 1, "one recovery logged");

  // No client noticed anything: one socket each, never closed.
  for (const { c, sub } of clients) {
    assert.equal(c.trace.sockets.length, 1, `${c.id}: still its first socket`);
    assert.deepEqual(c.trace.filter((e) => e.type === "close" || e.type === "error"), [], `${c.id}: socket never closed`);
    assert.deepEqual(sub.events.filter((e) => e.type === "disconnected"), [], `${c.id}: no disconnected()`);
    assert.equal(sub.events.filter(connected).length, 1, `${c.id}: connected() once`);
  }

  // Broadcasts flow again, fast, and everything said after the return
  // reaches every client exactly once, in order.
  assert.ok(recovery <= RECOVERY_BUDGET_MS, `broadcasts came back ${recovery} ms after Redis did; budget ${RECOVERY_BUDGET_MS} ms`);
  for (const { c, sub } of clients) {
    const after = sub.events.filter(received).map(seqOf).filter((s) => s >= seqBack);
    const want = [];
    for (let i = after[0]; i < spoken; i++) want.push(i);
    assert.deepEqual(after, want, `${c.id}: the broadcasts after the return, in order, none missing`);
  }
});
