// Cookie authentication: the official client connects with cookies that
// real Rails wrote (testdata/cookies vectors from Rails 6.1, 7.0 and 7.2,
// and fresh ones from the local ActionDispatch::Cookies), sent as the
// Cookie header of the WebSocket handshake as a browser would send them.
//
// * A valid cookie: welcome, and the connection is identified as Rails
//   identifies it. ChatChannel shows the identifier (a speak with
//   user:"mallory" is broadcast with user:<GlobalID param of User 42>).
// * A forged, foreign-secret, expired or missing cookie: exactly
//   {"type":"disconnect","reason":"unauthorized","reconnect":false}, close
//   1000, no welcome, and the client gives up: disconnected({
//   willAttemptReconnect:false}), its ConnectionMonitor stopped, and no new
//   socket during a full monitor poll window.
// * `gocable cookie` decodes a vector with the same settings.
//
// Every gocable gets SECRET_KEY_BASE in its environment (not as a flag),
// --load-defaults/--rails-version of the app that wrote the cookie, and
// --identify current_user=<jar>:<name> --gid-app myapp --gid-model User.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { closeAllClients, inbound, newClient, sleep } from "./support/cable.js";
import {
  flipCiphertextByte,
  forgeSignedValue,
  gidParam,
  gidParamFromRuby,
  mintWithRails,
  railsAvailable,
  railsFlags,
  userIdOf,
  vector,
} from "./support/cookies.js";
import { gocableBin, startServer, stopAllServers } from "./support/server.js";

const APP = "myapp";
const MODEL = "User";
const UNAUTHORIZED = { type: "disconnect", reason: "unauthorized", reconnect: false };
// Rails' ConnectionMonitor polls every 6–12 s (staleThreshold 6 s, jitter
// up to 100 % before the first reconnect attempt) and reopens a socket that
// has been closed for more than 6 s. A monitor still running would
// therefore open a new socket within 12 s of the close; watch a bit longer.
const WATCH_MS = 12500;

const IDENTIFY = {
  encrypted: (v) => ["--identify", `current_user=encrypted:${v.cookie_name}`],
  signed: (v) => ["--identify", `current_user=signed:${v.cookie_name}`],
  session: (v) => ["--session-key", v.cookie_name, "--identify", "current_user=session:warden:user"],
};

/** gocable flags for the app that reads cookie v (its config is the reader's). */
function serverArgs(v) {
  return [...railsFlags(v), ...IDENTIFY[v.jar](v), "--gid-app", APP, "--gid-model", MODEL];
}

// One server per distinct configuration, shared by the cases that need it.
const servers = new Map();
function serverFor(v) {
  const args = serverArgs(v);
  const key = JSON.stringify([v.secret_key_base, args]);
  if (!servers.has(key)) {
    servers.set(key, startServer({ args, env: { SECRET_KEY_BASE: v.secret_key_base } }));
  }
  return servers.get(key);
}

const SECRET = vector("7.2", "encrypted_user_id_int__json_sha256").secret_key_base;

// Fresh cookies from the local Rails (Debian's ruby-actionpack), minted now:
// one that expires in an hour and one that expired an hour ago.
const rails = railsAvailable();
const noRails = rails.error ? `Ruby with actionpack is not available: ${rails.error}` : false;
// Ruby is an install step of .ci/install, never optional: its absence
// fails here (the tests that need it are skipped only to keep their own
// output readable).
test("Ruby with actionpack and globalid is installed (apt-get install ruby-actioncable ruby-globalid)", () => {
  assert.equal(noRails, false, String(noRails));
  assert.equal(rails.globalid, "yes", "ruby-globalid is missing");
});

const fresh = {};
if (!noRails) {
  fresh.valid = mintWithRails({ secretKeyBase: SECRET, jar: "encrypted", name: "user_id", value: 42, expiresIn: 3600 });
  fresh.expired = mintWithRails({ secretKeyBase: SECRET, jar: "encrypted", name: "user_id", value: 42, expiresIn: -3600 });
  // A string primary key that GlobalID escapes: gid://myapp/User/alice%40example.com.
  fresh.email = mintWithRails({ secretKeyBase: SECRET, jar: "encrypted", name: "user_id", value: "alice@example.com", expiresIn: 3600 });
}

// Cookies Rails accepts: [vector, what it shows].
const ACCEPTED = [
  [vector("6.1", "encrypted_user_id_int__json"), "load_defaults 6.1 + :json initializer (SHA1 keys, AES-GCM)"],
  [vector("6.1", "encrypted_user_id_int__marshal"), "load_defaults 6.1, Marshal-serialized 42"],
  [vector("7.0", "encrypted_user_id_int__json_sha256"), "load_defaults 7.0 (SHA256 keys)"],
  [vector("7.0", "encrypted_among_other_cookies"), "among theme, _ga and locale cookies"],
  [vector("7.2", "encrypted_user_id_int__json_sha256"), "load_defaults 7.2"],
  [vector("7.2", "encrypted_user_id_string__json_sha256"), 'the string "42"'],
  [vector("7.2", "encrypted_future_expiry"), "expires 2099-01-01"],
  [vector("6.1", "signed_user_id_int__json"), "cookies.signed, 6.1"],
  [vector("7.2", "signed_user_id_int__json_sha256"), "cookies.signed, 7.2"],
  [vector("6.1", "session_devise__json"), "Devise session (warden.user.user.key), 6.1"],
  [vector("7.2", "session_devise__json_sha256"), "Devise session (warden.user.user.key), 7.2"],
];

// Cookies that must be refused: [label, reader (a vector whose config is
// the app's, so its server reads the cookie), Cookie header or null,
// gocable's logged reason]. A refused vector is its own reader, and its
// reason is Rails' verdict.
function refusedVector(version, name) {
  const v = vector(version, name);
  if (v.expected.ok) throw new Error(`${v.id}: Rails accepts this cookie`);
  return [v.id, v, v.cookie_header, v.expected.error_kind];
}
const enc72 = vector("7.2", "encrypted_user_id_int__json_sha256");
const signed72 = vector("7.2", "signed_user_id_int__json_sha256");
const session72 = vector("7.2", "session_devise__json_sha256");
const REFUSED = [
  ["no cookie (encrypted user_id)", enc72, null, "no_cookie"],
  ["no cookie (Devise session)", session72, null, "no_cookie"],
  ["7.2 encrypted cookie with one ciphertext byte flipped", enc72, `user_id=${flipCiphertextByte(enc72.cookie_header_value)}`, "auth_failed"],
  refusedVector("7.2", "encrypted_tampered_ciphertext"),
  refusedVector("7.2", "encrypted_wrong_secret"),
  refusedVector("7.2", "encrypted_sha1_cookie_read_by_sha256_app"),
  refusedVector("7.2", "encrypted_expired"),
  refusedVector("6.1", "encrypted_expired"),
  ["7.2 signed cookie rewritten to user 1, Rails' HMAC kept", signed72, `user_id=${forgeSignedValue(signed72.cookie_header_value, 1)}`, "auth_failed"],
  refusedVector("7.2", "signed_tampered_payload"),
  refusedVector("7.2", "signed_wrong_secret"),
  refusedVector("7.2", "signed_expired"),
  refusedVector("7.2", "session_devise__wrong_secret"),
  refusedVector("7.2", "session_devise__expired"),
];

before(async () => {
  const readers = [...ACCEPTED.map(([v]) => v), ...REFUSED.map(([, v]) => v)];
  if (!noRails) readers.push(fresh.valid, fresh.email);
  await Promise.all(readers.map(serverFor));
});

after(async () => {
  closeAllClients();
  await stopAllServers();
});

const connected = (e) => e.type === "connected";
const received = (e) => e.type === "received";

/** Connects the official client with cookie v and checks ChatChannel sees User <id>. */
async function assertIdentified(t, v) {
  assert.equal(v.expected.ok, true, `${v.id}: Rails reads this cookie`);
  const server = await serverFor(v);
  const id = userIdOf(v);
  const identifier = gidParam(APP, MODEL, id);
  const client = newClient(server, "cookie", { headers: { Cookie: v.cookie_header } });
  t.after(() => client.close());

  const chat = client.subscribe({ channel: "ChatChannel", room: `room-${client.id}` });
  const c = await chat.events.waitFor(connected, { timeout: 5000, what: "connected()" });
  assert.deepEqual(c.arg, { reconnected: false });
  const frames = client.trace.filter(inbound((m) => m.type !== "ping"));
  assert.deepEqual(frames[0].msg, { type: "welcome" }, "first frame");

  chat.subscription.perform("speak", { user: "mallory", message: `hi from ${v.id}` });
  const got = await chat.events.waitFor(received, { timeout: 5000, what: "the broadcast speak" });
  assert.deepEqual(got.data, { user: identifier, message: `hi from ${v.id}` }, "speak shows the cookie's user");
  t.diagnostic(`${v.id}: user ${JSON.stringify(id)} -> ${identifier}`);
}

describe("a Rails-made cookie identifies the connection", { concurrency: true }, () => {
  for (const [v, what] of ACCEPTED) {
    test(`${v.id}: ${what}`, { timeout: 15000 }, (t) => assertIdentified(t, v));
  }
  test("fresh cookie from the local Rails, expiring in an hour", { skip: noRails, timeout: 15000 }, (t) =>
    assertIdentified(t, fresh.valid),
  );
  test("fresh cookie from the local Rails with a string id GlobalID escapes", { skip: noRails, timeout: 15000 }, (t) =>
    assertIdentified(t, fresh.email),
  );
});

test("the expected identifier is GlobalID's own to_gid_param", { skip: noRails || (rails.globalid !== "yes" && "no globalid") }, () => {
  assert.equal(gidParamFromRuby(APP, MODEL, 42), gidParam(APP, MODEL, 42));
  assert.equal(gidParam(APP, MODEL, 42), "Z2lkOi8vbXlhcHAvVXNlci80Mg");
  // GlobalID escapes the id with CGI.escape (rails/globalid lib/global_id/uri/gid.rb).
  for (const id of ["alice@example.com", "john doe", "a/b+c%~é!*'()"]) {
    assert.equal(gidParam(APP, MODEL, id), gidParamFromRuby(APP, MODEL, id), `id ${JSON.stringify(id)}`);
  }
});

/**
 * Connects the official client with cookieHeader (or none) to reader's
 * server and checks the unauthorized disconnect and that the client
 * does not come back.
 */
async function assertRefused(t, reader, cookieHeader, reason) {
  const server = await serverFor(reader);
  const client = newClient(server, "refused", cookieHeader ? { headers: { Cookie: cookieHeader } } : {});
  t.after(() => client.close());
  const chat = client.subscribe({ channel: "ChatChannel", room: "lobby" });
  const [ws] = client.trace.sockets;
  let localPort;
  ws.once("upgrade", (res) => (localPort = res.socket.localPort));

  const closed = await client.trace.waitFor((e) => e.type === "close", { timeout: 5000, what: "close" });
  const closedAt = Date.now();
  const d = await chat.events.waitFor((e) => e.type === "disconnected", { timeout: 2000, what: "disconnected()" });
  assert.deepEqual(d.arg, { willAttemptReconnect: false });
  assert.equal(closed.code, 1000, "close code");
  const upgrade = client.trace.filter((e) => e.type === "upgrade");
  assert.deepEqual(upgrade.map((e) => e.status), [101], "the upgrade is accepted, then the connection refused");
  const frames = client.trace.filter((e) => e.type === "in");
  assert.deepEqual(frames.map((e) => e.raw), [JSON.stringify(UNAUTHORIZED)], "exactly one frame: the unauthorized disconnect");
  assert.deepEqual(client.trace.filter((e) => e.type === "out"), [], "the client sent nothing (no welcome, no subscribe)");
  assert.equal(client.consumer.connection.monitor.isRunning(), false, "ConnectionMonitor stopped");

  // No reconnect during a whole ConnectionMonitor poll window.
  await sleep(Math.max(0, WATCH_MS - (Date.now() - closedAt)));
  assert.equal(client.trace.sockets.length, 1, `no new socket in ${WATCH_MS} ms:\n${client.trace.dump()}`);
  assert.equal(client.trace.filter((e) => e.type === "connecting").length, 1);
  assert.deepEqual(
    chat.events.entries.map((e) => e.type),
    ["initialized", "disconnected"],
    "subscription callbacks",
  );

  // Refused for the right reason (the debug log of the authenticator).
  assert.ok(localPort, "client port");
  const lines = server.logLines(new RegExp(`auth: connection not identified.* remote=127\\.0\\.0\\.1:${localPort} `));
  assert.equal(lines.length, 1, `one auth log line for port ${localPort}:\n${server.output}`);
  assert.match(lines[0], new RegExp(` reason=${reason}( |$)`), "the reason gocable gives");
  assert.equal(server.logLines(new RegExp(`unauthorized connection attempt was rejected.* remote=127\\.0\\.0\\.1:${localPort}\\b`)).length, 1);
}

describe("a bad or missing cookie is refused and the client does not reconnect", { concurrency: true }, () => {
  for (const [label, reader, header, reason] of REFUSED) {
    test(`${label} → ${reason}`, { timeout: WATCH_MS + 15000 }, (t) => assertRefused(t, reader, header, reason));
  }
  test("fresh cookie from the local Rails that expired an hour ago → expired", { skip: noRails, timeout: WATCH_MS + 15000 }, (t) => {
    assert.equal(fresh.expired.expected.ok, false, "Rails itself refuses it");
    assert.ok(Date.parse(fresh.expired.expires_at) < Date.now());
    return assertRefused(t, fresh.valid, fresh.expired.cookie_header, "expired");
  });
});

/** Runs the gocable binary; resolves {code, stdout, stderr}. */
function runGocable(args, env) {
  return new Promise((resolve, reject) => {
    const p = spawn(gocableBin(), args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), 10000);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test("gocable cookie decodes a Rails cookie with the server's settings", { timeout: 20000 }, async () => {
  const env = { SECRET_KEY_BASE: SECRET };
  const v = enc72;
  let r = await runGocable(["cookie", ...railsFlags(v), "--jar", "encrypted", "--name", "user_id", "--header", v.cookie_header], env);
  assert.deepEqual(r, { code: 0, stdout: "42\n", stderr: "" }, "the value");

  r = await runGocable(["cookie", ...serverArgs(v), "--header", v.cookie_header, "--identity"], env);
  assert.equal(r.code, 0, r.stderr);
  const gid = gidParam(APP, MODEL, 42);
  assert.deepEqual(JSON.parse(r.stdout), { identity: { current_user: gid }, connection_identifier: gid });

  const s = session72;
  r = await runGocable(["cookie", ...railsFlags(s), "--session-key", s.cookie_name, "--jar", "session", "--header", s.cookie_header], env);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), s.expected.value, "the Devise session");

  const x = vector("7.2", "encrypted_expired");
  r = await runGocable(["cookie", ...railsFlags(x), "--jar", "encrypted", "--name", "user_id", "--header", x.cookie_header], env);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /expired/);
  assert.ok(!r.stderr.includes(SECRET), "stderr does not show the secret");
});

test("the servers' logs show neither the secret_key_base nor a cookie", async () => {
  const cookies = [
    ...ACCEPTED.map(([v]) => [v.id, v.cookie_header]),
    ...REFUSED.filter(([, , header]) => header).map(([label, , header]) => [label, header]),
    ...(noRails ? [] : [fresh.valid, fresh.expired].map((v) => [v.id, v.cookie_header])),
  ];
  for (const server of await Promise.all([...servers.values()])) {
    assert.ok(!server.output.includes(SECRET), `secret in the log of ${server.args.join(" ")}`);
    for (const [label, header] of cookies) {
      // the Rails cookie's value (it has "--"), not the theme=dark beside it
      const value = header.split(/; */).map((pair) => pair.slice(pair.indexOf("=") + 1)).find((x) => x.includes("--"));
      for (const shown of [value, decodeURIComponent(value)]) {
        assert.ok(!server.output.includes(shown), `${label}: the cookie is in a server log`);
      }
    }
  }
});
