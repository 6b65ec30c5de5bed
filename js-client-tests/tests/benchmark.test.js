// 2. subscribe + perform + receive, with the websocket-shootout
//    BenchmarkChannel: echo round trip; broadcast reaches every subscriber
//    and the sender also gets broadcastResult.
import assert from "node:assert/strict";
import { test } from "node:test";
import { newClient, sleep } from "./support/cable.js";
import { useServer } from "./support/setup.js";

const ctx = useServer();
const BENCH = { channel: "BenchmarkChannel" };

test("echo: perform('echo', data) comes back as received(data)", { timeout: 10000 }, async (t) => {
  const client = newClient(ctx.server, "echo");
  t.after(() => client.close());
  const { subscription, events, identifier } = client.subscribe(BENCH);
  await events.waitFor((e) => e.type === "connected", { what: "connected()" });

  const data = { hello: "world", n: 42, big: 9007199254740993n.toString(), nested: { list: [1, 2.5, null, true], s: "<&>é" } };
  assert.equal(subscription.perform("echo", data), true);

  const got = await events.waitFor((e) => e.type === "received", { what: "echo reply" });
  assert.deepEqual(got.data, { ...data, action: "echo" });

  // What went over the wire: the command, and a data frame for our identifier.
  const sent = client.trace.filter((e) => e.type === "out" && e.msg.command === "message");
  assert.equal(sent.length, 1);
  assert.equal(sent[0].msg.identifier, identifier);
  assert.deepEqual(JSON.parse(sent[0].msg.data), { ...data, action: "echo" });
  assert.deepEqual(client.messagesFor(identifier), [{ ...data, action: "echo" }]);

  // Several echoes back to back come back in order.
  for (let i = 0; i < 20; i++) subscription.perform("echo", { i });
  const replies = await events.waitForCount((e) => e.type === "received" && "i" in e.data, 20, { what: "echo replies" });
  assert.deepEqual(replies.map((e) => e.data.i), [...Array(20).keys()]);
});

test("broadcast: reaches both consumers, sender also gets broadcastResult", { timeout: 10000 }, async (t) => {
  const alice = newClient(ctx.server, "alice");
  const bob = newClient(ctx.server, "bob");
  t.after(() => {
    alice.close();
    bob.close();
  });
  const a = alice.subscribe(BENCH);
  const b = bob.subscribe(BENCH);
  await Promise.all([a, b].map(({ events }) => events.waitFor((e) => e.type === "connected", { what: "connected()" })));

  const token = `t-${Date.now()}`;
  a.subscription.perform("broadcast", { token, payload: "hi" });

  const isOurs = (e) => e.type === "received" && e.data.token === token;
  // bob: the broadcast itself
  const bobGot = await b.events.waitFor(isOurs, { what: "broadcast at bob" });
  assert.deepEqual(bobGot.data, { token, payload: "hi", action: "broadcast" });
  // alice: the broadcast (she streams "all" too) and the broadcastResult
  await a.events.waitForCount(isOurs, 2, { what: "broadcast + broadcastResult at alice" });
  await sleep(300); // nothing more may arrive
  const aliceGot = a.events.filter(isOurs).map((e) => e.data);
  assert.equal(aliceGot.length, 2, JSON.stringify(aliceGot));
  assert.deepEqual(
    aliceGot.map((d) => d.action).sort(),
    ["broadcast", "broadcastResult"],
  );
  for (const d of aliceGot) assert.deepEqual(d, { token, payload: "hi", action: d.action });
  assert.equal(b.events.filter(isOurs).length, 1, "bob gets the broadcast once, and no broadcastResult");
});
