// The README's porting guide, end to end: cmd/example-rooms is a program of
// a user's own (ten lines of main on cable/runner, and the Go port of a
// Rails app's RoomChannel and NotificationsChannel). The official client
// logs in with a cookie made by real Rails, joins only the rooms its user
// is a member of, speaks, may delete only its own messages, and receives
// NotificationsChannel.broadcast_to(user, ...) made in a Rails process
// through Rails' own redis adapter.
//
// Needs redis-server, ruby with ruby-actioncable, ruby-redis and
// ruby-globalid. A missing one fails the file.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { closeAllClients, sleep } from "./support/cable.js";
import { newClient } from "./support/cable.js";
import { railsBroadcastTo, railsCookie, requireRails } from "./support/rails.js";
import { startRedis, stopAllRedis, uniquePrefix, waitForNumSub } from "./support/redis.js";
import { buildProgram, startServer, stopAllServers } from "./support/server.js";

const secretKeyBase = "c0ffee".repeat(22);
const connected = (e) => e.type === "connected";
const rejected = (e) => e.type === "rejected";
const received = (e) => e.type === "received";
const ctx = {};

before(async () => {
  requireRails();
  const [redis, alice, bob] = await Promise.all([
    startRedis(),
    railsCookie(secretKeyBase, "user_id", 42),
    railsCookie(secretKeyBase, "user_id", 7),
  ]);
  ctx.redis = redis;
  ctx.cookies = { alice, bob };
  ctx.prefix = uniquePrefix("rooms");
  ctx.cableEnv = { REDIS_URL: redis.url, CHANNEL_PREFIX: ctx.prefix };
  ctx.server = await startServer({
    bin: buildProgram("../cmd/example-rooms"),
    // Every gocable flag works in the program: the same Redis and
    // channel_prefix as the Rails app, and its cookies.
    args: [
      "--redis-url", redis.url,
      "--channel-prefix", ctx.prefix,
      "--identify", "current_user=encrypted:user_id@User",
      "--gid-app", "myapp",
      "--load-defaults", "6.1",
      "--cookies-serializer", "json",
    ],
    env: { SECRET_KEY_BASE: secretKeyBase },
  });
});

after(async () => {
  closeAllClients();
  await stopAllServers();
  await stopAllRedis();
});

test("only members join a room; messages reach the room; only the author deletes", { timeout: 30000 }, async (t) => {
  // Room 1: alice (42) and bob (7). Room 2: alice only.
  const alice = newClient(ctx.server, "alice", { headers: { Cookie: ctx.cookies.alice } });
  const bob = newClient(ctx.server, "bob", { headers: { Cookie: ctx.cookies.bob } });
  t.after(() => [alice, bob].forEach((c) => c.close()));

  const a1 = alice.subscribe({ channel: "RoomChannel", room: "1" });
  const b1 = bob.subscribe({ channel: "RoomChannel", room: "1" });
  const b2 = bob.subscribe({ channel: "RoomChannel", room: "2" });
  const bNone = bob.subscribe({ channel: "RoomChannel" });
  await Promise.all([a1, b1].map((s) => s.events.waitFor(connected, { timeout: 5000, what: "connected()" })));
  await b2.events.waitFor(rejected, { timeout: 5000, what: "bob rejected from room 2" });
  await bNone.events.waitFor(rejected, { timeout: 5000, what: "no room: rejected" });

  a1.subscription.perform("speak", { body: "hello room 1" });
  const [ma, mb] = await Promise.all(
    [a1, b1].map((s) => s.events.waitFor((e) => received(e) && e.data.body === "hello room 1", { timeout: 5000, what: "alice's message" })),
  );
  assert.deepEqual(ma.data, mb.data);
  assert.equal(ma.data.user_id, 42, "the author is the connection's user, from the Rails cookie");
  const id = ma.data.id;
  assert.ok(Number.isInteger(id), `message id ${id}`);

  // Bob may not delete alice's message: he alone is told, nobody else sees anything.
  b1.subscription.perform("delete", { id });
  const refusal = await b1.events.waitFor((e) => received(e) && e.data.error, { timeout: 5000, what: "bob's refusal" });
  assert.deepEqual(refusal.data, { error: "not_yours", id });
  await sleep(200);
  assert.equal(a1.events.filter((e) => received(e) && (e.data.error || e.data.deleted)).length, 0, "alice saw nothing of it");

  // Alice may: the whole room is told.
  a1.subscription.perform("delete", { id });
  await Promise.all([a1, b1].map((s) => s.events.waitFor((e) => received(e) && e.data.deleted === id, { timeout: 5000, what: "deleted" })));
});

test("NotificationsChannel.broadcast_to(user) from Rails reaches that user only", { timeout: 30000 }, async (t) => {
  const alice = newClient(ctx.server, "alice", { headers: { Cookie: ctx.cookies.alice } });
  const bob = newClient(ctx.server, "bob", { headers: { Cookie: ctx.cookies.bob } });
  t.after(() => [alice, bob].forEach((c) => c.close()));
  const [na, nb] = [alice, bob].map((c) => c.subscribe({ channel: "NotificationsChannel" }));
  await Promise.all([na, nb].map((s) => s.events.waitFor(connected, { timeout: 5000, what: "connected()" })));

  // The stream Rails names for alice: notifications:<her GlobalID param>.
  const stream = `notifications:${Buffer.from("gid://myapp/User/42").toString("base64url")}`;
  await waitForNumSub(ctx.redis.url, `${ctx.prefix}:${stream}`, 1);
  const sent = await railsBroadcastTo(ctx.cableEnv, "NotificationsChannel", 42, '{"title":"You were mentioned"}');
  assert.equal(sent.stream, stream, "Rails and the Go port name the stream alike");

  const got = await na.events.waitFor(received, { timeout: 5000, what: "alice's notification" });
  assert.deepEqual(got.data, { title: "You were mentioned" });
  await sleep(300);
  assert.equal(nb.events.filter(received).length, 0, "bob got nothing");
});
