// Starts and stops gocable server processes for the tests.
//
// The binary comes from $GOCABLE_BIN (scripts/run-tests.js builds it once
// for the whole run). When a test file is run on its own without it, the
// binary is built here, once per process, into a temporary directory.
//
// Every server runs under supervise.js, whose stdin is a pipe from this
// process: if this process dies in any way, the pipe closes and the
// supervisor SIGKILLs gocable, so no server outlives the tests.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const projectRoot = join(here, "..", "..");
const supervisor = join(here, "supervise.js");
const verbose = !!process.env.GOCABLE_TEST_VERBOSE;

const live = new Set();
let builtBin;
const builtPrograms = new Map(); // package path -> binary

process.on("exit", () => {
  // Synchronous last resort; closing the pipe makes the supervisor SIGKILL
  // gocable (the OS closes it anyway when we exit).
  for (const s of live) s.proc.stdin.destroy();
  if (builtBin) rmSync(dirname(builtBin), { recursive: true, force: true });
  for (const bin of builtPrograms.values()) rmSync(dirname(bin), { recursive: true, force: true });
});

/**
 * Builds the Go program at pkg (a path from js-client-tests, such as
 * "../cmd/example-rooms": a program of a user's own, made with the runner)
 * once per process, and returns its binary, for startServer({ bin }).
 */
export function buildProgram(pkg) {
  if (!builtPrograms.has(pkg)) {
    const dir = mkdtempSync(join(tmpdir(), "gocable-prog-"));
    const bin = join(dir, "program");
    const r = spawnSync("go", ["build", "-o", bin, pkg], { cwd: projectRoot, stdio: ["ignore", "inherit", "inherit"] });
    if (r.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`go build ${pkg} failed (status ${r.status})`);
    }
    builtPrograms.set(pkg, bin);
  }
  return builtPrograms.get(pkg);
}

/** The gocable binary the servers run (built on first use without $GOCABLE_BIN). */
export function gocableBin() {
  if (process.env.GOCABLE_BIN) return process.env.GOCABLE_BIN;
  if (!builtBin) {
    const dir = mkdtempSync(join(tmpdir(), "gocable-js-"));
    const bin = join(dir, "gocable");
    const r = spawnSync("go", ["build", "-o", bin, "../cmd/gocable"], {
      cwd: projectRoot,
      stdio: ["ignore", "inherit", "inherit"],
    });
    if (r.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`go build ../cmd/gocable failed (status ${r.status})`);
    }
    builtBin = bin;
  }
  return builtBin;
}

/** A free TCP port on 127.0.0.1 (free now; gocable binds it right after). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class GocableProcess {
  constructor(port, args, env, bin) {
    this.port = port;
    this.host = `127.0.0.1:${port}`;
    this.url = `ws://${this.host}/cable`;
    this.origin = `http://${this.host}`;
    this.httpBase = `http://${this.host}`;
    this.args = args;
    this.output = "";
    this.exitStatus = undefined;
    const flags = ["--addr", this.host, "--log-level", "debug", "--shutdown-timeout", "3s", ...args];
    this.proc = spawn(process.execPath, [supervisor, bin ?? gocableBin(), ...flags], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...serverBaseEnv(), ...(env || {}) },
    });
    live.add(this);
    const onData = (chunk) => {
      const s = chunk.toString();
      this.output += s;
      if (verbose) process.stderr.write(s.replace(/^(?=.)/gm, `[gocable :${port}] `));
    };
    this.proc.stdout.on("data", onData);
    this.proc.stderr.on("data", onData);
    this.proc.stdin.on("error", () => {});
    this.exited = new Promise((resolve) => {
      this.proc.on("exit", (code, signal) => {
        live.delete(this);
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
      if (!this.running) {
        throw new Error(`gocable exited (${this.exitStatus}) before listening:\n${this.output}`);
      }
      if (/gocable listening/.test(this.output)) {
        // The log line is written right after the listener is bound;
        // confirm with a real request.
        try {
          const res = await fetch(`${this.httpBase}/health`);
          await res.text();
          if (res.ok) return;
        } catch {
          /* not yet */
        }
      }
      await sleep(25);
    }
    throw new Error(`gocable did not listen on ${this.host} within ${timeoutMs} ms:\n${this.output}`);
  }

  /** Sends a signal to gocable (through the supervisor). */
  signal(sig = "SIGTERM") {
    if (this.running) this.proc.kill(sig);
  }

  /** Graceful stop (SIGTERM); SIGKILL if it takes longer than timeoutMs. */
  async stop(timeoutMs = 6000) {
    if (!this.running) return this.exitStatus;
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.kill(), timeoutMs);
    const status = await this.exited;
    clearTimeout(timer);
    return status;
  }

  /** Hard kill: closing the supervisor's stdin makes it SIGKILL gocable. */
  kill() {
    this.proc.stdin.destroy();
  }

  /** The server log lines that match re. */
  logLines(re) {
    return this.output.split("\n").filter((l) => re.test(l));
  }
}

/**
 * Starts gocable on 127.0.0.1 and resolves once it serves requests.
 * Without `port` a free one is picked (and re-picked if it was taken in
 * the meantime); with `port` the bind is retried until retryMs has passed
 * (for restarting on the same port). `env` adds environment variables
 * (e.g. SECRET_KEY_BASE, which should not go on the command line). `bin`
 * runs another program built on the runner (see buildProgram) instead of
 * gocable.
 */
// gocable reads its configuration from the environment too; a developer's
// REDIS_URL or SECRET_KEY_BASE must not change what a test starts, so
// those are passed only when a test asks for them.
const configEnv = /^(REDIS_|CABLE_|RAILS_|RACK_ENV$|SECRET_KEY_BASE$|GOCABLE_)/;
function serverBaseEnv() {
  const base = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!configEnv.test(k) || k === "GOCABLE_BIN" || k === "GOCABLE_TEST_VERBOSE") base[k] = v;
  }
  return base;
}

export async function startServer({ port, args = [], env, bin, readyTimeoutMs = 15000, retryMs = 5000 } = {}) {
  const fixed = port !== undefined;
  const deadline = Date.now() + retryMs;
  for (let attempt = 1; ; attempt++) {
    const p = fixed ? port : await freePort();
    const srv = new GocableProcess(p, args, env, bin);
    try {
      await srv.waitReady(readyTimeoutMs);
      return srv;
    } catch (err) {
      srv.kill();
      await srv.exited;
      const inUse = /address already in use/i.test(srv.output);
      if (!inUse || (fixed ? Date.now() > deadline : attempt >= 5)) throw err;
      await sleep(fixed ? 100 : 0);
    }
  }
}

/** Stops every server this process started and has not stopped yet. */
export async function stopAllServers() {
  await Promise.all([...live].map((s) => s.stop()));
}
