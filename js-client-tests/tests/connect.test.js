// 1. The official client connects, negotiates actioncable-v1-json, and the
//    server pings within 3.5 s (the bound), then about every 3 s.
import assert from "node:assert/strict";
import { test } from "node:test";
import { inbound, isPing, newClient } from "./support/cable.js";
import { useServer } from "./support/setup.js";

const ctx = useServer();

test("official client connects, negotiates actioncable-v1-json and is pinged", { timeout: 15000 }, async (t) => {
  const { server } = ctx;
  const client = newClient(server, "connect");
  t.after(() => client.close());
  const { events, identifier } = client.subscribe({ channel: "BenchmarkChannel" });

  const connected = await events.waitFor((e) => e.type === "connected", { what: "connected()" });
  assert.deepEqual(connected.arg, { reconnected: false });
  assert.equal(client.consumer.connection.isOpen(), true);

  // The handshake: 101 with Sec-WebSocket-Protocol: actioncable-v1-json,
  // which both ws and the client's own view agree on.
  const upgrade = client.trace.filter((e) => e.type === "upgrade");
  assert.equal(upgrade.length, 1, "exactly one socket was opened");
  assert.equal(upgrade[0].status, 101);
  assert.equal(upgrade[0].protocolHeader, "actioncable-v1-json");
  const open = client.trace.entries.find((e) => e.type === "open");
  assert.equal(open.protocol, "actioncable-v1-json");
  assert.equal(client.consumer.connection.getProtocol(), "actioncable-v1-json");

  // The first frame is the welcome, then the confirmation of our subscribe.
  const frames = client.trace.filter(inbound((m) => m.type !== "ping"));
  assert.deepEqual(frames[0].msg, { type: "welcome" });
  assert.equal(frames[0].raw, '{"type":"welcome"}');
  const subscribes = client.trace.filter((e) => e.type === "out");
  assert.deepEqual(subscribes[0].msg, { command: "subscribe", identifier: '{"channel":"BenchmarkChannel"}' });
  assert.deepEqual(frames[1].msg, { identifier, type: "confirm_subscription" });

  // A ping arrives within 3.5 s of the socket opening: {"type":"ping","message":<unix s>}.
  const remaining = Math.max(0, 3500 - (Date.now() - open.t));
  const ping = await client.trace.waitFor(isPing, { timeout: remaining, what: "ping within 3.5 s of open" });
  assert.ok(ping.t - open.t <= 3500, `first ping ${ping.t - open.t} ms after open`);
  assert.deepEqual(Object.keys(ping.msg).sort(), ["message", "type"]);
  assert.ok(Number.isInteger(ping.msg.message), `ping message ${ping.raw} is an integer`);
  assert.ok(Math.abs(ping.msg.message - Date.now() / 1000) < 5, `ping time ${ping.msg.message} is now`);

  // And keeps pinging, about every 3 s (BEAT_INTERVAL).
  const [, second] = await client.trace.waitForCount(isPing, 2, { timeout: 6000, what: "pings" });
  const gap = second.t - ping.t;
  assert.ok(gap >= 1500 && gap <= 4500, `ping interval ${gap} ms`);
  assert.ok(second.msg.message >= ping.msg.message);

  // The health endpoint counts the connection.
  const health = await (await fetch(`${server.httpBase}/health`)).json();
  assert.equal(health.status, "OK");
  assert.equal(health.pubsub, "memory");
  assert.equal(health.connections, 1);

  // Nothing went wrong on the way: no close, no error.
  assert.deepEqual(client.trace.filter((e) => e.type === "close" || e.type === "error"), []);
});
