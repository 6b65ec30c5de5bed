// 6. Server restart: SIGTERM makes gocable send
//    {"type":"disconnect","reason":"server_restart","reconnect":true} and
//    close with 1000; the official client reports
//    disconnected({willAttemptReconnect:true}); a new server on the same
//    port is then found by the client's ConnectionMonitor on its own
//    (poll every 6–12 s once the connection is > 6 s stale), which
//    resubscribes everything, reports connected({reconnected:true}), and
//    broadcasts flow again.
import assert from "node:assert/strict";
import { test } from "node:test";
import { inbound, newClient, outbound } from "./support/cable.js";
import { startServer } from "./support/server.js";
import { useServer } from "./support/setup.js";

const ctx = useServer();
const RESTART = { type: "disconnect", reason: "server_restart", reconnect: true };

test("clients reconnect and resubscribe by themselves after a server restart", { timeout: 45000 }, async (t) => {
  const first = ctx.server;
  const alice = newClient(first, "alice");
  const bob = newClient(first, "bob");
  t.after(() => [alice, bob].forEach((c) => c.close()));

  const aBench = alice.subscribe({ channel: "BenchmarkChannel" });
  const bChat = bob.subscribe({ channel: "ChatChannel", room: "lobby" });
  const bBench = bob.subscribe({ channel: "BenchmarkChannel" });
  const subs = [aBench, bChat, bBench];
  const connected = (e) => e.type === "connected";
  await Promise.all(subs.map(({ events }) => events.waitFor(connected, { what: "connected()" })));

  // SIGTERM: graceful shutdown.
  const stoppedAt = Date.now();
  first.signal("SIGTERM");
  for (const client of [alice, bob]) {
    const frame = await client.trace.waitFor(inbound((m) => m.type === "disconnect"), { what: "disconnect frame" });
    assert.deepEqual(frame.msg, RESTART);
    const close = await client.trace.waitFor((e) => e.type === "close", { what: "close" });
    assert.equal(close.code, 1000, `close code (${client.id})`);
    assert.equal(close.sock, 1);
  }
  for (const { events } of subs) {
    const d = await events.waitFor((e) => e.type === "disconnected", { what: "disconnected()" });
    assert.deepEqual(d.arg, { willAttemptReconnect: true });
  }
  const status = await first.exited;
  assert.equal(status, 0, `gocable exit status after SIGTERM:\n${first.output}`);
  assert.match(first.output, /gocable stopped/);

  // A new server process on the same port.
  const second = await startServer({ port: first.port });
  ctx.server = second; // so the file's after() stops it
  assert.equal(second.port, first.port);
  const restartedAt = Date.now();
  t.diagnostic(`old server gone and new one up ${restartedAt - stoppedAt} ms after SIGTERM`);

  // The clients come back on their own. The ConnectionMonitor needs up to
  // ~18 s (6 s staleness + a 6–12 s poll), so allow 25 s from the restart.
  const firstConfirm = [];
  await Promise.all(
    subs.map(async ({ events }, i) => {
      const e = await events.waitFor((x) => connected(x) && x.t > restartedAt - 1, {
        timeout: 25000 - (Date.now() - restartedAt),
        what: "connected() after restart",
      });
      firstConfirm[i] = e;
    }),
  );
  for (const client of [alice, bob]) {
    const opened = client.trace.filter((e) => e.type === "open");
    assert.equal(opened.length, 2, `${client.id} opened a second socket`);
    assert.equal(opened[1].protocol, "actioncable-v1-json");
    t.diagnostic(`${client.id} reconnected ${opened[1].t - stoppedAt} ms after SIGTERM`);
    // welcome, then a subscribe for every subscription in creation order
    const newIn = client.trace.filter((e) => e.type === "in" && e.sock === 2 && e.msg?.type !== "ping");
    assert.deepEqual(newIn[0].msg, { type: "welcome" });
    const resent = client.trace.filter(outbound((m, e) => e.sock === 2 && m.command === "subscribe")).map((e) => e.msg.identifier);
    const ids = client === alice ? [aBench.identifier] : [bChat.identifier, bBench.identifier];
    assert.deepEqual([...new Set(resent)], ids, `${client.id} resubscribed`);
  }
  // alice's only subscription gets reconnected:true
  assert.deepEqual(firstConfirm[0].arg, { reconnected: true });
  // bob: the first confirmation after the reconnect says reconnected:true,
  // the other one false (client behaviour, protocol.md §7.3).
  const bobConfirms = bob.trace
    .filter(inbound((m, e) => e.sock === 2 && m.type === "confirm_subscription"))
    .map((e) => e.msg.identifier);
  assert.deepEqual([...bobConfirms].sort(), [bBench.identifier, bChat.identifier].sort());
  const byId = { [bChat.identifier]: firstConfirm[1].arg, [bBench.identifier]: firstConfirm[2].arg };
  assert.deepEqual(byId[bobConfirms[0]], { reconnected: true });
  assert.deepEqual(byId[bobConfirms[1]], { reconnected: false });

  // Broadcasts reach the reconnected clients.
  const token = `after-restart-${Date.now()}`;
  aBench.subscription.perform("broadcast", { token });
  const ours = (e) => e.type === "received" && e.data.token === token;
  const got = await bBench.events.waitFor(ours, { what: "broadcast after restart" });
  assert.deepEqual(got.data, { token, action: "broadcast" });
  await aBench.events.waitForCount(ours, 2, { what: "broadcast + broadcastResult" });

  bChat.subscription.perform("speak", { user: "bob", message: "back again" });
  const said = await bChat.events.waitFor((e) => e.type === "received", { what: "chat after restart" });
  assert.deepEqual(said.data, { user: "bob", message: "back again" });

  // No subscription was rejected along the way.
  for (const { events } of subs) assert.deepEqual(events.filter((e) => e.type === "rejected"), []);
});
