// 4. Two consumers chatting in ChatChannel room "lobby"; a third one in
//    room "other" hears nothing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { newClient, sleep } from "./support/cable.js";
import { useServer } from "./support/setup.js";

const ctx = useServer();

test("two clients chat in lobby, in order; room other hears nothing", { timeout: 10000 }, async (t) => {
  const alice = newClient(ctx.server, "alice");
  const bob = newClient(ctx.server, "bob");
  const carol = newClient(ctx.server, "carol");
  t.after(() => [alice, bob, carol].forEach((c) => c.close()));

  const a = alice.subscribe({ channel: "ChatChannel", room: "lobby" });
  const b = bob.subscribe({ channel: "ChatChannel", room: "lobby" });
  const c = carol.subscribe({ channel: "ChatChannel", room: "other" });
  assert.equal(a.identifier, '{"channel":"ChatChannel","room":"lobby"}');
  await Promise.all([a, b, c].map(({ events }) => events.waitFor((e) => e.type === "connected", { what: "connected()" })));

  const expected = [
    { user: "alice", message: "hello bob" },
    { user: "alice", message: "how are you?" },
    { user: "bob", message: "fine, thanks" },
  ];
  const received = (e) => e.type === "received";

  // alice says two things back to back: same connection, so they must
  // arrive in the order said.
  a.subscription.perform("speak", { user: "alice", message: "hello bob" });
  a.subscription.perform("speak", { user: "alice", message: "how are you?" });
  await Promise.all([a, b].map(({ events }) => events.waitForCount(received, 2, { what: "alice's messages" })));
  // then bob answers
  b.subscription.perform("speak", { user: "bob", message: "fine, thanks" });
  await Promise.all([a, b].map(({ events }) => events.waitForCount(received, 3, { what: "all three messages" })));

  await sleep(300); // let anything stray arrive
  assert.deepEqual(a.events.filter(received).map((e) => e.data), expected, "alice's view");
  assert.deepEqual(b.events.filter(received).map((e) => e.data), expected, "bob's view");
  assert.deepEqual(c.events.filter(received), [], "carol in room other heard nothing");
  // carol's socket saw no data frames at all (only welcome/ping/confirm)
  assert.deepEqual(carol.messagesFor(c.identifier), []);

  // and her room works on its own
  c.subscription.perform("speak", { user: "carol", message: "anyone?" });
  const heard = await c.events.waitFor(received, { what: "carol's own message" });
  assert.deepEqual(heard.data, { user: "carol", message: "anyone?" });
  await sleep(200);
  assert.equal(a.events.filter(received).length, 3, "lobby did not hear room other");
  assert.equal(b.events.filter(received).length, 3, "lobby did not hear room other");
});
