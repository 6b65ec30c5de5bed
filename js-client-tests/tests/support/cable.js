// Runs the official @rails/actioncable client in Node, as a browser would:
//
// * adapters.WebSocket is a subclass of the `ws` WebSocket that sends the
//   page's Origin (http://<host:port> of the cable URL, as a browser on a
//   same-origin page would) and records every frame in both directions,
//   the negotiated subprotocol, and the close code.
// * `document` and `addEventListener` get the small stubs the client's
//   ConnectionMonitor needs outside a browser.
//
// Nothing of the client itself is patched: timing (ConnectionMonitor,
// SubscriptionGuarantor) is the real one.
import WebSocket from "ws";
import { adapters, createConsumer, logger } from "@rails/actioncable";

globalThis.document ??= {
  visibilityState: "visible",
  hidden: false,
  head: { querySelector: () => null },
  createElement() {
    throw new Error("tests must give the consumer an absolute ws:// URL");
  },
};
globalThis.addEventListener ??= () => {};
globalThis.removeEventListener ??= () => {};
if (process.env.ACTIONCABLE_DEBUG) logger.enabled = true;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** An append-only list of events that tests can wait on. */
export class EventLog {
  constructor(name) {
    this.name = name;
    this.entries = [];
    this.waiters = new Set();
  }

  push(type, data = {}) {
    const entry = { type, t: Date.now(), ...data };
    this.entries.push(entry);
    for (const w of [...this.waiters]) w(entry);
    return entry;
  }

  filter(pred) {
    return this.entries.filter(pred);
  }

  /** The first entry (from index `from`) matching pred, waiting up to timeout ms. */
  waitFor(pred, { timeout = 3000, from = 0, what = "event" } = {}) {
    const found = this.entries.slice(from).find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = (entry) => {
        if (!pred(entry)) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(entry);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`${this.name}: no ${what} within ${timeout} ms; log:\n${this.dump()}`));
      }, timeout);
      this.waiters.add(waiter);
    });
  }

  /** Waits until `n` entries match pred; resolves with them. */
  async waitForCount(pred, n, { timeout = 3000, what = "events" } = {}) {
    let count = 0;
    await this.waitFor((e) => pred(e) && ++count >= n, { timeout, what: `${n} × ${what}` });
    return this.filter(pred).slice(0, n);
  }

  dump(last = 40) {
    const t0 = this.entries[0]?.t ?? 0;
    return this.entries
      .slice(-last)
      .map((e) => {
        const { type, t, msg, raw, socket, ...rest } = e;
        let body = raw !== undefined ? raw : JSON.stringify(rest);
        if (body.length > 300) body = `${body.slice(0, 300)}… (${body.length} chars)`;
        return `  +${t - t0}ms ${type} ${body}`;
      })
      .join("\n");
  }
}

// Trace logs by URL, so each consumer (whose URL carries ?client=<id>) gets
// its own log across all the sockets it opens.
const tracesByURL = new Map();
// Extra handshake headers by URL (newClient's `headers` option), e.g. the
// Cookie header a browser would send.
const headersByURL = new Map();

/** `ws` WebSocket that sends a same-origin Origin header and traces frames. */
export class TracingWebSocket extends WebSocket {
  constructor(url, protocols, options = {}) {
    const u = new URL(url);
    const headers = headersByURL.get(String(url));
    super(url, protocols, { origin: `http://${u.host}`, ...(headers && { headers }), ...options });
    const trace = tracesByURL.get(String(url)) ?? new EventLog(String(url));
    this.trace = trace;
    trace.sockets ??= [];
    trace.sockets.push(this);
    const sock = trace.sockets.length;
    this.sock = sock;
    trace.push("connecting", { sock, socket: this });
    this.on("upgrade", (res) =>
      trace.push("upgrade", { sock, status: res.statusCode, protocolHeader: res.headers["sec-websocket-protocol"] }),
    );
    this.on("open", () => trace.push("open", { sock, protocol: this.protocol }));
    this.on("message", (data, isBinary) => {
      const raw = data.toString();
      let msg;
      try {
        msg = JSON.parse(raw);
      } catch {
        msg = undefined;
      }
      trace.push("in", { sock, raw, msg, isBinary });
    });
    this.on("close", (code, reason) => trace.push("close", { sock, code, reason: reason.toString() }));
    this.on("error", (err) => trace.push("error", { sock, message: err.message }));
  }

  send(data, ...rest) {
    const raw = typeof data === "string" ? data : Buffer.from(data).toString();
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      msg = undefined;
    }
    this.trace.push("out", { sock: this.sock, raw, msg });
    return super.send(data, ...rest);
  }
}

adapters.WebSocket = TracingWebSocket;

// Predicates over trace entries.
export const inbound = (pred = () => true) => (e) => e.type === "in" && pred(e.msg ?? {}, e);
export const outbound = (pred = () => true) => (e) => e.type === "out" && pred(e.msg ?? {}, e);
export const isPing = inbound((m) => m.type === "ping");

const openClients = new Set();
let seq = 0;

/**
 * A consumer of the official client, connected to server (a GocableProcess)
 * once something subscribes. Returns helpers around it. `headers` are sent
 * with every WebSocket handshake of this consumer (e.g. `{ Cookie: "..." }`).
 */
export function newClient(server, name = "client", { headers } = {}) {
  const id = `${name}-${++seq}`;
  const url = `${server.url}?client=${encodeURIComponent(id)}`;
  const trace = new EventLog(id);
  tracesByURL.set(url, trace);
  if (headers) headersByURL.set(url, headers);
  const consumer = createConsumer(url);
  const client = {
    id,
    url,
    trace,
    consumer,
    /** subscriptions.create with callbacks that record into an EventLog. */
    subscribe(params) {
      const events = new EventLog(`${id} ${JSON.stringify(params)}`);
      const subscription = consumer.subscriptions.create(params, {
        initialized() {
          events.push("initialized");
        },
        connected(arg) {
          events.push("connected", { arg });
        },
        disconnected(arg) {
          events.push("disconnected", { arg });
        },
        rejected() {
          events.push("rejected");
        },
        received(data) {
          events.push("received", { data });
        },
      });
      return { subscription, events, identifier: subscription.identifier };
    },
    /** Data frames ({identifier, message}) received for identifier. */
    messagesFor(identifier) {
      return trace.filter(inbound((m) => m.identifier === identifier && m.type === undefined)).map((e) => e.msg.message);
    },
    close() {
      consumer.disconnect();
      for (const ws of trace.sockets ?? []) {
        if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.terminate();
      }
      tracesByURL.delete(url);
      headersByURL.delete(url);
      openClients.delete(client);
    },
  };
  openClients.add(client);
  return client;
}

/** Disconnects every consumer created by newClient and not closed yet. */
export function closeAllClients() {
  for (const c of [...openClients]) c.close();
}

/**
 * A raw `ws` client (no ActionCable client) with the same-origin Origin and
 * tracing. Resolves once open. `options` go to the ws constructor.
 */
export async function rawSocket(server, { protocols = ["actioncable-v1-json", "actioncable-unsupported"], ...options } = {}) {
  const ws = new TracingWebSocket(server.url, protocols, options);
  openRaw.add(ws);
  ws.on("close", () => openRaw.delete(ws));
  await ws.trace.waitFor((e) => e.type === "open" || e.type === "close" || e.type === "error", {
    timeout: 3000,
    what: "open",
  });
  if (ws.readyState !== WebSocket.OPEN) throw new Error(`raw socket did not open:\n${ws.trace.dump()}`);
  return ws;
}

const openRaw = new Set();

/** Terminates every raw socket still open. */
export function closeAllRaw() {
  for (const ws of openRaw) ws.terminate();
  openRaw.clear();
}

export { WebSocket };
