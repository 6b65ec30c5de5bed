// Redis for the tests that run gocable with the redis pub/sub.
//
// Each test file starts its own redis-server on a free loopback port, with
// no persistence (--save '' --appendonly no), unless REDIS_URL is set: then
// the files share that server and keep apart by channel prefix
// (uniquePrefix). Tests that kill Redis (redis-chaos) always start their
// own.
//
// A missing redis-server fails the test with an install hint: a skipped
// interoperability test proves nothing.
//
// Like gocable, every redis-server runs under supervise.js, whose stdin is
// a pipe from this process: if this process dies in any way, the pipe
// closes and the supervisor SIGKILLs redis-server. Closing that pipe on
// purpose is how kill() crashes Redis.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, sleep } from "./server.js";

const here = dirname(fileURLToPath(import.meta.url));
const supervisor = join(here, "supervise.js");
const verbose = !!process.env.GOCABLE_TEST_VERBOSE;

export const redisInstallHint = "install it (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis)";

const live = new Set();
process.on("exit", () => {
  for (const r of live) r.proc?.stdin.destroy();
});

/**
 * Throws, with an install hint, unless redis-server can be run. shareable
 * tells whether REDIS_URL would do instead.
 */
export function requireRedisServer({ shareable = false } = {}) {
  const r = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    const or = shareable ? ", or set REDIS_URL to share a running server" : " (this test kills Redis, so REDIS_URL cannot replace it)";
    throw new Error(`redis-server cannot be run (${r.error?.message ?? `status ${r.status}: ${r.stderr}`}): ${redisInstallHint}${or}`);
  }
  return r.stdout.trim();
}

/** A channel prefix that no other test run uses, e.g. for a shared REDIS_URL. */
export function uniquePrefix(name) {
  return `gocable_e2e_${name}_${process.pid}_${Date.now()}_production`;
}

/** A redis-server process on 127.0.0.1:port that the tests own. */
export class RedisServer {
  constructor(port) {
    this.port = port;
    this.host = `127.0.0.1:${port}`;
    this.url = `redis://${this.host}`;
    this.external = false;
    this.dir = mkdtempSync(join(tmpdir(), "gocable-redis-"));
    this.output = "";
    this.proc = undefined;
  }

  get running() {
    return this.proc !== undefined && this.exitStatus === undefined;
  }

  /** Starts redis-server and resolves once it answers PING. */
  async start(timeoutMs = 20000) {
    if (this.running) throw new Error(`redis-server on ${this.host} is already running`);
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", this.dir];
    const proc = spawn(process.execPath, [supervisor, "redis-server", ...args], { stdio: ["pipe", "pipe", "pipe"] });
    this.proc = proc;
    this.exitStatus = undefined;
    live.add(this);
    const onData = (chunk) => {
      const s = chunk.toString();
      this.output += s;
      if (verbose) process.stderr.write(s.replace(/^(?=.)/gm, `[redis :${this.port}] `));
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    proc.stdin.on("error", () => {});
    this.exited = new Promise((resolve) => {
      proc.on("exit", (code, signal) => {
        if (this.proc === proc) {
          live.delete(this);
          this.exitStatus = code ?? signal;
        }
        resolve(code ?? signal);
      });
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exitStatus !== undefined) {
        throw new Error(`redis-server on ${this.host} exited (${this.exitStatus}) before answering PING:\n${this.output}`);
      }
      try {
        if ((await redisCommand(this.url, ["PING"], { timeoutMs: 200 })) === "PONG") return this;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`redis-server on ${this.host} did not answer PING within ${timeoutMs} ms:\n${this.output}`);
      }
      await sleep(20);
    }
  }

  /** Crashes redis-server (SIGKILL, from the supervisor) and waits for it to be gone. */
  async kill() {
    if (!this.running) return;
    const exited = this.exited;
    this.proc.stdin.destroy();
    await exited;
  }

  /** Starts redis-server again on the same port (after kill()). */
  async restart(timeoutMs = 20000) {
    await this.kill();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await this.start(timeoutMs);
      } catch (err) {
        // The port may linger for a moment after a SIGKILL.
        if (!/Address already in use/i.test(err.message) || Date.now() > deadline) throw err;
        await sleep(50);
      }
    }
  }

  /** Kills redis-server and removes its directory. */
  async stop() {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Starts a redis-server of the tests' own on a free port. With REDIS_URL
 * set (and own false), returns that server instead, which stop() leaves
 * running.
 */
export async function startRedis({ own = false } = {}) {
  if (!own && process.env.REDIS_URL) {
    const url = process.env.REDIS_URL;
    try {
      await redisCommand(url, ["PING"]);
    } catch (err) {
      throw new Error(`REDIS_URL=${url} does not answer PING: ${err.message}`);
    }
    return { url, external: true, stop: async () => {} };
  }
  requireRedisServer({ shareable: !own });
  for (let attempt = 1; ; attempt++) {
    const srv = new RedisServer(await freePort());
    try {
      return await srv.start();
    } catch (err) {
      await srv.stop();
      if (!/Address already in use/i.test(err.message) || attempt >= 5) throw err;
    }
  }
}

/** Stops every redis-server this process started and has not stopped. */
export async function stopAllRedis() {
  await Promise.all([...live].map((r) => r.stop()));
}

// A minimal RESP2 client: enough for PING, PUBLISH and PUBSUB NUMSUB from
// the tests. Each call opens its own connection.

function parseReply(buf, pos = 0) {
  if (pos >= buf.length) return undefined;
  const eol = buf.indexOf("\r\n", pos);
  if (eol < 0) return undefined;
  const type = String.fromCharCode(buf[pos]);
  const line = buf.toString("utf8", pos + 1, eol);
  const next = eol + 2;
  switch (type) {
    case "+":
      return { value: line, end: next };
    case "-":
      return { value: new Error(line), end: next };
    case ":":
      return { value: Number(line), end: next };
    case "$": {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      if (buf.length < next + n + 2) return undefined;
      return { value: buf.toString("utf8", next, next + n), end: next + n + 2 };
    }
    case "*": {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const items = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, p);
        if (!r) return undefined;
        items.push(r.value);
        p = r.end;
      }
      return { value: items, end: p };
    }
    default:
      throw new Error(`redis: unexpected reply ${JSON.stringify(buf.toString("utf8", pos, eol))}`);
  }
}

function encodeCommand(args) {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`;
  return out;
}

/**
 * Sends one command (an array of arguments) to the Redis at url
 * (redis://[user:password@]host:port[/db]) and resolves with its reply;
 * an error reply rejects.
 */
export function redisCommand(url, args, { timeoutMs = 2000 } = {}) {
  const u = new URL(url);
  const commands = [];
  if (u.password) commands.push(u.username ? ["AUTH", decodeURIComponent(u.username), decodeURIComponent(u.password)] : ["AUTH", decodeURIComponent(u.password)]);
  const db = u.pathname.replace(/^\//, "");
  if (db && db !== "0") commands.push(["SELECT", db]);
  commands.push(args);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.hostname || "127.0.0.1", port: Number(u.port || 6379) });
    let buf = Buffer.alloc(0);
    const replies = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`redis ${args[0]}: no reply within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (err) => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    sock.on("error", fail);
    sock.on("connect", () => sock.write(commands.map(encodeCommand).join("")));
    sock.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        let r;
        try {
          r = parseReply(buf);
        } catch (err) {
          return fail(err);
        }
        if (!r) return;
        buf = buf.subarray(r.end);
        replies.push(r.value);
        if (replies.length === commands.length) {
          clearTimeout(timer);
          sock.end();
          const err = replies.find((v) => v instanceof Error);
          if (err) return reject(new Error(`redis ${args[0]}: ${err.message}`));
          return resolve(replies.at(-1));
        }
      }
    });
  });
}

/** PUBSUB NUMSUB channel: how many connections subscribe to it. */
export async function numSub(url, channel) {
  const [, n] = await redisCommand(url, ["PUBSUB", "NUMSUB", channel]);
  return n;
}

/** Waits until PUBSUB NUMSUB channel is at least n. */
export async function waitForNumSub(url, channel, n, { timeout = 5000 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const got = await numSub(url, channel);
    if (got >= n) return got;
    if (Date.now() > deadline) throw new Error(`redis channel ${channel}: ${got} subscribers after ${timeout} ms; want ${n}`);
    await sleep(20);
  }
}
