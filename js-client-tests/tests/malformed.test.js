// 5. Malformed input from a raw ws client: no reply, the socket stays open
//    and still answers a valid subscribe (Rails logs bad commands and
//    carries on).
import assert from "node:assert/strict";
import { test } from "node:test";
import { WebSocket, inbound, rawSocket, sleep } from "./support/cable.js";
import { useServer } from "./support/setup.js";

const ctx = useServer();
const BENCH_ID = '{"channel":"BenchmarkChannel"}';
const notPing = inbound((m) => m.type !== "ping");

async function openAndWelcome() {
  const ws = await rawSocket(ctx.server);
  await ws.trace.waitFor(inbound((m) => m.type === "welcome"), { what: "welcome" });
  return ws;
}

async function expectStillWorking(ws) {
  assert.equal(ws.readyState, WebSocket.OPEN, `socket closed:\n${ws.trace.dump()}`);
  const from = ws.trace.entries.length;
  ws.send(JSON.stringify({ command: "subscribe", identifier: BENCH_ID }));
  const confirm = await ws.trace.waitFor(inbound((m) => m.type === "confirm_subscription"), {
    from,
    what: "confirm_subscription",
  });
  assert.deepEqual(confirm.msg, { identifier: BENCH_ID, type: "confirm_subscription" });
  ws.send(JSON.stringify({ command: "message", identifier: BENCH_ID, data: JSON.stringify({ action: "echo", ok: 1 }) }));
  const echo = await ws.trace.waitFor(inbound((m) => m.identifier === BENCH_ID && m.message), { from, what: "echo" });
  assert.deepEqual(echo.msg.message, { action: "echo", ok: 1 });
}

test("'not json' and an unknown command: no reply, socket open, subscribe still works", { timeout: 10000 }, async () => {
  const ws = await openAndWelcome();
  const from = ws.trace.entries.length;
  ws.send("not json");
  ws.send('{"command":"bogus"}');
  await sleep(500);
  assert.deepEqual(ws.trace.filter(notPing).slice(1), [], "no frame answers bad input");
  assert.deepEqual(ws.trace.entries.slice(from).filter((e) => e.type === "close" || e.type === "error"), []);
  await expectStillWorking(ws);
  ws.close();
});

test("more bad input (CT-28/39/40/41 of the protocol doc) never closes the socket", { timeout: 10000 }, async () => {
  const ws = await openAndWelcome();
  const bad = [
    "[1,2]",
    '"str"',
    "{}",
    "null",
    '{"command":"subscribe"}',
    '{"command":"subscribe","identifier":"notjson"}',
    '{"command":"subscribe","identifier":{"channel":"BenchmarkChannel"}}',
    `{"command":"message","identifier":${JSON.stringify(BENCH_ID)},"data":"{\\"action\\":\\"echo\\"}"}`, // not subscribed
    `{"command":"unsubscribe","identifier":${JSON.stringify(BENCH_ID)}}`, // not subscribed
  ];
  for (const frame of bad) ws.send(frame);
  ws.send(Buffer.from(JSON.stringify({ command: "subscribe", identifier: BENCH_ID })), { binary: true });
  await sleep(500);
  // Rails answers none of these; a subscribe that names no channel may be
  // rejected by gocable, but nothing else may come back.
  const replies = ws.trace.filter(notPing).slice(1).map((e) => e.msg);
  for (const m of replies) {
    assert.equal(m?.type, "reject_subscription", `unexpected reply ${JSON.stringify(m)}`);
  }
  if (replies.length) console.log(`# replies to bad input: ${JSON.stringify(replies)}`);
  await expectStillWorking(ws);

  // After subscribing: message to a subscribed identifier with bad data.
  const from = ws.trace.entries.length;
  for (const data of ["notjson", "[1]", "{}", '{"action":"nosuchaction"}', '{"action":"_private"}']) {
    ws.send(JSON.stringify({ command: "message", identifier: BENCH_ID, data }));
  }
  ws.send(JSON.stringify({ command: "message", identifier: BENCH_ID, data: 7 }));
  ws.send(JSON.stringify({ command: "message", identifier: BENCH_ID }));
  await sleep(500);
  assert.deepEqual(ws.trace.entries.slice(from).filter(notPing).map((e) => e.msg), [], "no reply to bad messages");
  assert.equal(ws.readyState, WebSocket.OPEN);
  ws.send(JSON.stringify({ command: "message", identifier: BENCH_ID, data: JSON.stringify({ action: "echo", again: true }) }));
  const echo = await ws.trace.waitFor(inbound((m) => m.message?.again === true), { from, what: "echo" });
  assert.deepEqual(echo.msg, { identifier: BENCH_ID, message: { action: "echo", again: true } });
  ws.close();
});
