// Real Rails for the tests: Ruby processes that use Rails' own ActionCable
// and its redis subscription adapter (testdata/rails/e2e/cable.rb), and a
// real ActionCable server run by puma (testdata/rails/e2e/config.ru).
//
// They run with Debian's packages (ruby, ruby-actioncable 6.1, ruby-redis,
// ruby-globalid; puma for the server) or the gems of the same names. A
// missing one fails the test with an install hint, never skips it.
//
// The Redis side is configured through the environment, as a Rails app's
// cable.yml is (see testdata/rails/e2e/setup.rb): pass
// { REDIS_URL, CHANNEL_PREFIX } or { CABLE_CONFIG, RAILS_ENV }.
import { spawn, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, sleep } from "./server.js";

const here = dirname(fileURLToPath(import.meta.url));
const supervisor = join(here, "supervise.js");
export const e2eDir = join(here, "..", "..", "..", "testdata", "rails", "e2e");
const cableScript = join(e2eDir, "cable.rb");
const verbose = !!process.env.GOCABLE_TEST_VERBOSE;

export const rubyInstallHint =
  "install Ruby and Rails' ActionCable (Debian/Ubuntu: apt-get install -y ruby ruby-actioncable ruby-activesupport ruby-redis ruby-globalid), or gem install actioncable redis globalid";
export const pumaInstallHint = "install puma (Debian/Ubuntu: apt-get install -y puma; or gem install puma)";

// The variables through which the scripts read their cable config; the
// parent's values never leak into a Ruby process.
const configVars = ["REDIS_URL", "CHANNEL_PREFIX", "CABLE_CONFIG", "RAILS_ENV", "RACK_ENV", "SECRET_KEY_BASE"];

function rubyEnv(env) {
  const out = { ...process.env };
  for (const k of configVars) delete out[k];
  return { ...out, ...env };
}

let rubyVersion;

/** Throws, with an install hint, unless ruby can load ActionCable; returns its version. */
export function requireRails() {
  if (rubyVersion) return rubyVersion;
  const r = spawnSync("ruby", [cableScript, "version"], { encoding: "utf8", env: rubyEnv({}) });
  if (r.error) throw new Error(`ruby cannot be run (${r.error.message}): ${rubyInstallHint}`);
  const m = /^actioncable (\S+)/m.exec(r.stdout);
  if (r.status !== 0 || !m) {
    throw new Error(`ruby ${cableScript} version failed (status ${r.status}):\n${r.stdout}${r.stderr}\n${rubyInstallHint}`);
  }
  rubyVersion = m[1];
  return rubyVersion;
}

/** Throws, with an install hint, unless puma can be run. */
export function requirePuma() {
  const r = spawnSync("puma", ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error(`puma cannot be run (${r.error?.message ?? `status ${r.status}: ${r.stderr}`}): ${pumaInstallHint}`);
  }
  return r.stdout.trim();
}

/**
 * Runs `ruby cable.rb ...args` with env (the cable config) and resolves with
 * its stdout lines; a non-zero exit or a timeout rejects with its output.
 */
export function runCable(args, { env = {}, timeoutMs = 30000 } = {}) {
  requireRails();
  return new Promise((resolve, reject) => {
    const proc = spawn("ruby", [cableScript, ...args], { env: rubyEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (c) => (stdout += c));
    proc.stderr.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    proc.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`ruby cable.rb ${args[0]}: ${err.message}: ${rubyInstallHint}`));
    });
    proc.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) {
        return reject(new Error(`ruby cable.rb ${args.join(" ")} exited ${code ?? signal}:\n${stdout}${stderr}`));
      }
      resolve(stdout.split("\n").filter((l) => l !== ""));
    });
  });
}

/**
 * ActionCable.server.broadcast(stream, message) in a Rails process, for
 * each message given as JSON text (parsed by Ruby, so big integers stay
 * exact). Resolves with the payloads Rails published, byte for byte.
 */
export async function railsBroadcast(env, stream, jsonMessages) {
  const lines = await runCable(["broadcast", stream, ...jsonMessages], { env });
  if (lines.length !== jsonMessages.length) {
    throw new Error(`cable.rb broadcast printed ${lines.length} payloads for ${jsonMessages.length} messages: ${lines.join("\n")}`);
  }
  return lines.map((l) => JSON.parse(l));
}

/**
 * CHANNEL.broadcast_to(User.new(userId), message) in a Rails process, with
 * message given as JSON text: Rails names the stream. Resolves with
 * { stream, payload }: the stream Rails named and the payload it published.
 */
export async function railsBroadcastTo(env, channel, userId, jsonMessage) {
  const lines = await runCable(["broadcast_to", channel, String(userId), jsonMessage], { env });
  if (lines.length !== 2) throw new Error(`cable.rb broadcast_to printed ${JSON.stringify(lines)}`);
  return { stream: lines[0], payload: JSON.parse(lines[1]) };
}

/**
 * remote_connections.where(current_user: User.new(userId)).disconnect in a
 * Rails process; resolves with the internal channel Rails used,
 * "action_cable/<connection identifier>".
 */
export async function railsDisconnect(env, userId) {
  const lines = await runCable(["disconnect", String(userId)], { env });
  const m = /^channel (.+)$/.exec(lines[0] ?? "");
  if (!m) throw new Error(`cable.rb disconnect printed ${JSON.stringify(lines)}`);
  return m[1];
}

/** An encrypted cookie written by ActionDispatch's cookie jar: "name=value" for a Cookie header. */
export async function railsCookie(secretKeyBase, name, value) {
  const lines = await runCable(["cookie", name, JSON.stringify(value)], { env: { SECRET_KEY_BASE: secretKeyBase } });
  if (lines.length !== 1 || !lines[0].startsWith(`${name}=`)) throw new Error(`cable.rb cookie printed ${JSON.stringify(lines)}`);
  return lines[0];
}

/** The gid param Rails and gocable give User id in app myapp: the connection identifier. */
export function userGid(id) {
  return Buffer.from(`gid://myapp/User/${id}`).toString("base64url");
}

const liveRails = new Set();
process.on("exit", () => {
  for (const s of liveRails) s.proc.stdin.destroy();
});

class RailsServer {
  constructor(port, env) {
    this.port = port;
    this.host = `127.0.0.1:${port}`;
    this.url = `ws://${this.host}/cable`;
    this.httpBase = `http://${this.host}`;
    this.output = "";
    this.exitStatus = undefined;
    const args = ["--bind", `tcp://${this.host}`, "--environment", "production", "--threads", "0:16", join(e2eDir, "config.ru")];
    this.proc = spawn(process.execPath, [supervisor, "puma", ...args], {
      stdio: ["pipe", "pipe", "pipe"],
      env: rubyEnv(env),
      cwd: e2eDir,
    });
    liveRails.add(this);
    const onData = (chunk) => {
      const s = chunk.toString();
      this.output += s;
      if (verbose) process.stderr.write(s.replace(/^(?=.)/gm, `[rails :${port}] `));
    };
    this.proc.stdout.on("data", onData);
    this.proc.stderr.on("data", onData);
    this.proc.stdin.on("error", () => {});
    this.exited = new Promise((resolve) => {
      this.proc.on("exit", (code, signal) => {
        liveRails.delete(this);
        this.exitStatus = code ?? signal;
        resolve(this.exitStatus);
      });
    });
  }

  get running() {
    return this.exitStatus === undefined;
  }

  async waitReady(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`puma exited (${this.exitStatus}) before serving:\n${this.output}`);
      try {
        const res = await fetch(`${this.httpBase}/up`);
        const body = await res.text();
        if (res.ok && body === "ok") return;
      } catch {
        /* not yet */
      }
      await sleep(50);
    }
    throw new Error(`puma did not serve ${this.httpBase}/up within ${timeoutMs} ms:\n${this.output}`);
  }

  /** Graceful stop (SIGTERM); SIGKILL if it takes longer than timeoutMs. */
  async stop(timeoutMs = 5000) {
    if (!this.running) return this.exitStatus;
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.stdin.destroy(), timeoutMs);
    const status = await this.exited;
    clearTimeout(timer);
    return status;
  }
}

/**
 * Starts the real ActionCable server of config.ru under puma on a free
 * port, with env as its cable config, and resolves once it serves. Its
 * `url` is the ws:// URL of /cable, so newClient() accepts it.
 */
export async function startRailsServer({ env, readyTimeoutMs = 20000 } = {}) {
  requireRails();
  requirePuma();
  for (let attempt = 1; ; attempt++) {
    const srv = new RailsServer(await freePort(), env);
    try {
      await srv.waitReady(readyTimeoutMs);
      return srv;
    } catch (err) {
      srv.proc.stdin.destroy();
      await srv.exited;
      if (!/Address already in use/i.test(srv.output) || attempt >= 5) throw err;
    }
  }
}

/** Stops every Rails server this process started and has not stopped. */
export async function stopAllRails() {
  await Promise.all([...liveRails].map((s) => s.stop()));
}
