// Turbo Streams in a real Chromium: the demo's /turbo-demo page runs
// @hotwired/turbo-rails (bundled from npm) with a
// <turbo-cable-stream-source channel="Turbo::StreamsChannel"> whose signed
// stream name was made by real ActiveSupport (channels/testdata/turbo/).
// A <turbo-stream> broadcast through gocable's HTTP endpoint changes the
// DOM; a tampered signature gets reject_subscription and no update.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { launchBrowser, recordCableFrames, recordPageErrors, screenshot } from "./support/browser.js";
import { sleep } from "./support/server.js";
import { useServer } from "./support/setup.js";

const here = dirname(fileURLToPath(import.meta.url));
const vectors = JSON.parse(readFileSync(join(here, "..", "..", "channels", "testdata", "turbo", "vectors.json"), "utf8"));
const byID = Object.fromEntries(vectors.vectors.map((v) => [v.id, v]));
const good = byID.valid_plain; // "messages", SHA256-derived key (load_defaults >= 7.0)
const tampered = byID.tampered_digest; // the same name, last hex digit changed
assert.equal(good.want, "messages");
assert.equal(tampered.valid, false);

const broadcastSecret = "browser-test-broadcast-secret";
const ctx = useServer([
  "--demo",
  "--turbo",
  "--turbo-secret-key-base",
  good.secret_key_base,
  "--turbo-key-digest",
  "sha256",
  "--broadcast-secret",
  broadcastSecret,
]);
let browser;

before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

async function broadcast(body, secret = broadcastSecret) {
  const res = await fetch(`${ctx.server.httpBase}/_broadcast`, {
    method: "POST",
    headers: { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

const append = (html) => `<turbo-stream action="append" target="messages"><template>${html}</template></turbo-stream>`;

async function openStream(signed) {
  const page = await browser.context.newPage();
  const frames = recordCableFrames(page);
  const errors = recordPageErrors(page);
  await page.goto(`${ctx.server.httpBase}/turbo-demo?signed-stream-name=${encodeURIComponent(signed)}`);
  assert.equal(await page.locator("#build-hint").count(), 0, "the npm bundle is built into gocable");
  return { page, frames, errors };
}

/** Waits until a frame of the given type arrives for the signed name. */
async function waitForFrame(tab, type, signed, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const f = tab.frames.find(
      (f) => f.dir === "received" && f.data?.type === type && JSON.parse(f.data.identifier).signed_stream_name === signed,
    );
    if (f) return f;
    if (Date.now() > deadline) throw new Error(`no ${type} within ${timeoutMs} ms; frames: ${JSON.stringify(tab.frames)}`);
    await sleep(50);
  }
}

test("a Ruby-signed stream name subscribes and a broadcast <turbo-stream> changes the DOM; a tampered one is rejected", { timeout: 60000 }, async () => {
  const ok = await openStream(good.signed);
  await ok.page.locator("turbo-cable-stream-source[connected]").waitFor({ state: "attached", timeout: 10000 });
  const confirm = await waitForFrame(ok, "confirm_subscription", good.signed);
  // The identifier as turbo-rails builds it: channel, then signed_stream_name.
  assert.deepEqual(Object.keys(JSON.parse(confirm.data.identifier)), ["channel", "signed_stream_name"]);

  const bad = await openStream(tampered.signed);
  await waitForFrame(bad, "reject_subscription", tampered.signed);
  assert.equal(await bad.page.locator("turbo-cable-stream-source[connected]").count(), 0);
  assert.equal(await bad.page.locator('#subscription[data-state="waiting"]').count(), 1);

  // One broadcast, then a batch of two.
  assert.deepEqual(await broadcast({ stream: "messages", data: append("<p>hi</p>") }), {
    status: 202,
    body: { status: "accepted", broadcasts: 1 },
  });
  await ok.page.locator("#messages p", { hasText: "hi" }).waitFor({ timeout: 10000 });
  const batch = await broadcast([
    { stream: "messages", data: append('<p class="second">second, from a batch</p>') },
    { stream: "elsewhere", data: append("<p>not for this page</p>") },
  ]);
  assert.deepEqual(batch, { status: 202, body: { status: "accepted", broadcasts: 2 } });
  await ok.page.locator("#messages p.second").waitFor({ timeout: 10000 });
  // A wrong secret is refused and changes nothing.
  const refused = await broadcast({ stream: "messages", data: append("<p>intruder</p>") }, "wrong");
  assert.equal(refused.status, 401);

  await sleep(500); // anything stray would have arrived by now
  assert.deepEqual(await ok.page.locator("#messages p").allInnerTexts(), ["hi", "second, from a batch"]);
  // The rejected page got both broadcasts' chance and shows nothing.
  assert.equal(await bad.page.locator("#messages p").count(), 0);
  assert.equal(
    bad.frames.filter((f) => f.dir === "received" && f.data?.message !== undefined).length,
    0,
    "the rejected page received no broadcast",
  );
  await screenshot(ok.page, "turbo-subscribed");
  await screenshot(bad.page, "turbo-tampered");
  assert.deepEqual(ok.errors, [], "no page errors");
  assert.deepEqual(bad.errors, [], "no page errors");
  await Promise.all([ok.page.close(), bad.page.close()]);
});
