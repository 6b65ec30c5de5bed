// Request forgery protection: Node's ws sends no Origin by default, and
// gocable (like Rails) refuses such an upgrade with HTTP 404 "Page not
// found" unless the Origin is the request's own host, is allowed, or the
// protection is disabled.
import assert from "node:assert/strict";
import { test } from "node:test";
import { WebSocket, inbound, newClient, rawSocket } from "./support/cable.js";
import { startServer } from "./support/server.js";
import { useServer } from "./support/setup.js";

const ctx = useServer();
const PROTOCOLS = ["actioncable-v1-json", "actioncable-unsupported"];

/** Upgrade with a plain ws client; resolves {status, body} or {opened}. */
function tryUpgrade(url, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, PROTOCOLS, options);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error("upgrade attempt timed out"));
    }, 3000);
    ws.on("unexpected-response", (req, res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode, contentType: res.headers["content-type"], body });
      });
    });
    ws.on("open", () => {
      clearTimeout(timer);
      const protocol = ws.protocol;
      ws.once("message", (data) => {
        ws.terminate();
        resolve({ opened: true, protocol, first: data.toString() });
      });
    });
    ws.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

test("a client without an Origin header is refused with 404 Page not found", { timeout: 10000 }, async () => {
  const r = await tryUpgrade(ctx.server.url); // ws sends no Origin by default
  assert.equal(r.status, 404);
  assert.equal(r.body, "Page not found");
  assert.match(r.contentType ?? "", /^text\/plain/);
});

test("foreign origins are refused, same-origin is accepted", { timeout: 10000 }, async () => {
  const { server } = ctx;
  for (const origin of ["http://evil.example", `https://${server.host}`, "http://127.0.0.1:1", "null"]) {
    const r = await tryUpgrade(server.url, { origin });
    assert.equal(r.status, 404, `Origin ${origin}`);
    assert.equal(r.body, "Page not found", `Origin ${origin}`);
  }
  const ok = await tryUpgrade(server.url, { origin: server.origin });
  assert.deepEqual(ok, { opened: true, protocol: "actioncable-v1-json", first: '{"type":"welcome"}' });
});

test("the official client with the Origin-sending ws subclass connects", { timeout: 10000 }, async (t) => {
  const client = newClient(ctx.server, "origin");
  t.after(() => client.close());
  const { events } = client.subscribe({ channel: "BenchmarkChannel" });
  await events.waitFor((e) => e.type === "connected", { what: "connected()" });
});

test("--disable-forgery-protection accepts a client without Origin", { timeout: 10000 }, async (t) => {
  const open = await startServer({ args: ["--disable-forgery-protection"] });
  t.after(() => open.stop());
  const r = await tryUpgrade(open.url);
  assert.deepEqual(r, { opened: true, protocol: "actioncable-v1-json", first: '{"type":"welcome"}' });
  const ws = await rawSocket(open, { origin: "http://evil.example" });
  await ws.trace.waitFor(inbound((m) => m.type === "welcome"), { what: "welcome" });
  ws.terminate();
});

test("--allowed-origins accepts listed strings and /regexp/ matches only", { timeout: 10000 }, async (t) => {
  const srv = await startServer({ args: ["--allowed-origins", "http://app.example,/^https:\\/\\/[a-z]+\\.example\\.com$/"] });
  t.after(() => srv.stop());
  for (const origin of ["http://app.example", "https://www.example.com", srv.origin]) {
    const r = await tryUpgrade(srv.url, { origin });
    assert.equal(r.opened, true, `Origin ${origin}: ${JSON.stringify(r)}`);
  }
  for (const origin of ["http://app.example.evil", "https://www.example.com.evil", "https://x.y.example.com"]) {
    const r = await tryUpgrade(srv.url, { origin });
    assert.equal(r.status, 404, `Origin ${origin}`);
  }
  const r = await tryUpgrade(srv.url);
  assert.equal(r.status, 404, "no Origin");
});
