// 3. A rejected subscription: rejected() fires, and the client's
//    SubscriptionGuarantor stops re-sending subscribe.
import assert from "node:assert/strict";
import { test } from "node:test";
import { inbound, newClient, outbound, sleep } from "./support/cable.js";
import { useServer } from "./support/setup.js";

const ctx = useServer();

async function expectRejected(client, params) {
  const { events, identifier, subscription } = client.subscribe(params);
  await events.waitFor((e) => e.type === "rejected", { what: "rejected()" });

  const rejections = client.trace.filter(inbound((m) => m.identifier === identifier));
  assert.deepEqual(
    rejections.map((e) => e.msg),
    [{ identifier, type: "reject_subscription" }],
  );
  assert.ok(!client.consumer.subscriptions.subscriptions.includes(subscription), "subscription removed");

  // No more subscribe frames for it (the guarantor re-sends every 500 ms
  // while a subscribe is unanswered).
  const isSubscribe = outbound((m) => m.command === "subscribe" && m.identifier === identifier);
  const before = client.trace.filter(isSubscribe).length;
  assert.equal(before, 1, "one subscribe was needed");
  await sleep(1500);
  assert.equal(client.trace.filter(isSubscribe).length, before, "subscribe re-sent after rejection");
  assert.deepEqual(events.filter((e) => e.type === "connected" || e.type === "received"), []);
  return identifier;
}

test("unknown channel: rejected() fires and subscribe is not re-sent", { timeout: 10000 }, async (t) => {
  const client = newClient(ctx.server, "reject");
  t.after(() => client.close());
  await expectRejected(client, { channel: "NoSuchChannel" });

  // The connection is fine afterwards: the socket stayed open, and a valid
  // subscription on the same consumer works.
  assert.deepEqual(client.trace.filter((e) => e.type === "close"), []);
  const { events } = client.subscribe({ channel: "BenchmarkChannel" });
  await events.waitFor((e) => e.type === "connected", { what: "connected()" });
});

test("ChatChannel without a room is rejected too", { timeout: 10000 }, async (t) => {
  const client = newClient(ctx.server, "noroom");
  t.after(() => client.close());
  await expectRejected(client, { channel: "ChatChannel" });
});
