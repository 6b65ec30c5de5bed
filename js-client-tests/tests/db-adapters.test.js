// The official client receives broadcasts that a Rails process makes
// through the database pub/subs gocable reads as Rails does:
//
// 1. adapter: postgresql: ActionCable.server.broadcast in a Rails process
//    (Rails' own PostgreSQL adapter, testdata/rails/pg_interop.rb: NOTIFY)
//    reaches a client of gocable --cable-config with adapter postgresql.
// 2. adapter: solid_cable: a row written as the solid_cable gem writes it
//    (testdata/rails/solid_cable/message.rb, through Active Record) into the
//    app's SQLite cable database reaches a client of gocable, which found
//    that database through the app's own cable.yml and database.yml.
//
// Needs the machine's PostgreSQL (127.0.0.1:5432, database test) and ruby
// with ruby-actioncable, ruby-activerecord, ruby-pg and ruby-sqlite3.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { closeAllClients, newClient } from "./support/cable.js";
import { requireRails } from "./support/rails.js";
import { startServer, stopAllServers } from "./support/server.js";

const here = dirname(fileURLToPath(import.meta.url));
const railsDir = join(here, "..", "..", "testdata", "rails");
const pgURL = process.env.PGPUBSUB_TEST_URL || "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";
const tmp = mkdtempSync(join(tmpdir(), "gocable-db-"));
const connected = (e) => e.type === "connected";
const received = (e) => e.type === "received";

after(async () => {
  closeAllClients();
  await stopAllServers();
  rmSync(tmp, { recursive: true, force: true });
});

/** Runs ruby with args and env; returns its stdout lines, throwing on failure. */
function ruby(args, env = {}) {
  const r = spawnSync("ruby", args, { env: { ...process.env, ...env }, encoding: "utf8", timeout: 60000 });
  if (r.status !== 0) throw new Error(`ruby ${args.join(" ")} exited ${r.status ?? r.signal}:\n${r.stdout}${r.stderr}`);
  return r.stdout.split("\n").filter((l) => l !== "");
}

/** An app directory with config/cable.yml and, if given, config/database.yml. */
function railsApp(name, cableYML, databaseYML) {
  const root = join(tmp, name);
  mkdirSync(join(root, "config"), { recursive: true });
  mkdirSync(join(root, "storage"), { recursive: true });
  writeFileSync(join(root, "config", "cable.yml"), cableYML);
  if (databaseYML) writeFileSync(join(root, "config", "database.yml"), databaseYML);
  return root;
}

test("a Rails broadcast through adapter: postgresql reaches the official client", { timeout: 60000 }, async (t) => {
  requireRails();
  const prefix = `pgjs${process.pid}`;
  const root = railsApp("pg", `production:\n  adapter: postgresql\n  channel_prefix: ${prefix}\n`);
  const server = await startServer({
    args: ["--cable-config", join(root, "config", "cable.yml"), "--env", "production", "--channels", "chat"],
    env: { DATABASE_URL: pgURL },
  });
  assert.ok(server.logLines(/postgresql pub\/sub/).length === 1, `gocable chose the PostgreSQL pub/sub:\n${server.output}`);
  const client = newClient(server, "pg");
  t.after(() => client.close());
  const sub = client.subscribe({ channel: "ChatChannel", room: "pg" });
  await sub.events.waitFor(connected, { timeout: 10000, what: "connected()" });

  // pg_interop.rb broadcast sends a fixed list of messages; the first one
  // is enough to show the wire matches.
  const lines = ruby([join(railsDir, "pg_interop.rb"), "broadcast", "chat_pg"], { DATABASE_URL: pgURL, CHANNEL_PREFIX: prefix });
  const first = JSON.parse(JSON.parse(lines[0]));
  const got = await sub.events.waitFor(received, { timeout: 10000, what: "the Rails broadcast" });
  assert.deepEqual(got.data, first);
});

test("a row written as the solid_cable gem writes it reaches the official client", { timeout: 60000 }, async (t) => {
  requireRails();
  const root = railsApp(
    "solid",
    "production:\n  adapter: solid_cable\n  connects_to:\n    database:\n      writing: cable\n  polling_interval: 0.1.seconds\n  message_retention: 1.day\n",
    "production:\n  primary:\n    adapter: sqlite3\n    database: storage/production.sqlite3\n  cable:\n    adapter: sqlite3\n    database: storage/production_cable.sqlite3\n    migrations_paths: db/cable_migrate\n",
  );
  const dbConfig = JSON.stringify({ adapter: "sqlite3", database: join(root, "storage", "production_cable.sqlite3") });
  // The table, as the gem's db/cable_schema.rb creates it (bin/rails db:prepare).
  ruby(["-ractive_record", "-e", `
    ActiveRecord::Base.establish_connection(JSON.parse(ARGV[0]))
    ActiveRecord::Schema.define(version: 1) do
      create_table "solid_cable_messages", force: :cascade do |t|
        t.binary "channel", limit: 1024, null: false
        t.binary "payload", limit: 536870912, null: false
        t.datetime "created_at", null: false
        t.integer "channel_hash", limit: 8, null: false
        t.index ["channel"], name: "index_solid_cable_messages_on_channel"
        t.index ["channel_hash"], name: "index_solid_cable_messages_on_channel_hash"
        t.index ["created_at"], name: "index_solid_cable_messages_on_created_at"
      end
    end`, dbConfig]);
  const server = await startServer({
    args: ["--cable-config", join(root, "config", "cable.yml"), "--env", "production", "--channels", "chat"],
  });
  assert.ok(server.logLines(/solid_cable pub\/sub/).length === 1, `gocable chose the Solid Cable pub/sub:\n${server.output}`);
  const client = newClient(server, "solid");
  t.after(() => client.close());
  const sub = client.subscribe({ channel: "ChatChannel", room: "solid" });
  await sub.events.waitFor(connected, { timeout: 10000, what: "connected()" });

  const payload = JSON.stringify({ user: "rails", message: "through solid_cable" });
  ruby([join(railsDir, "solid_cable", "message.rb"), dbConfig, "broadcast", "chat_solid", payload]);
  const got = await sub.events.waitFor(received, { timeout: 10000, what: "the row" });
  assert.deepEqual(got.data, { user: "rails", message: "through solid_cable" });
});
