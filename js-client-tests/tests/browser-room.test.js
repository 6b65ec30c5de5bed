// The demo chat room (gocable --demo, /room/{name}) in a real Chromium:
// two tabs join, chat, see the online count and the leave notice. The page
// runs the official @rails/actioncable client, bundled from npm.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, recordPageErrors, screenshot } from "./support/browser.js";
import { useServer } from "./support/setup.js";

const ctx = useServer(["--demo"]);
let browser;

before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Opens /room/lobby in a new tab and joins as user. */
async function joinAs(user) {
  const page = await browser.context.newPage();
  const errors = recordPageErrors(page);
  await page.goto(`${ctx.server.httpBase}/room/lobby`);
  assert.equal(await page.locator("#build-hint").count(), 0, "the npm bundle is built into gocable");
  await page.fill("#username", user);
  await page.click("#join");
  await page.locator('#status[data-state="connected"]').waitFor({ timeout: 10000 });
  return { page, errors };
}

const online = (page, n) => page.locator(`#online[data-count="${n}"]`).waitFor({ timeout: 10000 });

/** The chat lines of a tab: "<class>|<user>|<text>". */
const lines = (page) =>
  page.$$eval("#messages li", (lis) =>
    lis.map((li) => [li.className, ...[...li.children].map((c) => c.textContent)].join("|")),
  );

test("two tabs chat in /room/lobby, see the online count and the leave notice", { timeout: 60000 }, async () => {
  const alice = await joinAs("alice");
  await online(alice.page, 1);
  await alice.page.locator("#messages li.join", { hasText: "alice joined" }).waitFor();

  const bob = await joinAs("bob");
  for (const tab of [alice, bob]) {
    await online(tab.page, 2);
    assert.equal(await tab.page.locator("#online").innerText(), "2 online");
    await tab.page.locator("#messages li.join", { hasText: "bob joined" }).waitFor();
  }

  // Both speak, through the form.
  await alice.page.fill("#message", "hello from alice <b>not bold</b>");
  await alice.page.click("#send");
  await bob.page.locator("#messages li.message", { hasText: "hello from alice" }).waitFor();
  await bob.page.fill("#message", "hi alice, bob here");
  await bob.page.press("#message", "Enter");
  const said = ["alice: hello from alice <b>not bold</b>", "bob: hi alice, bob here"];
  for (const tab of [alice, bob]) {
    await tab.page.locator("#messages li.message", { hasText: "bob here" }).waitFor();
    const messages = (await lines(tab.page)).filter((l) => l.startsWith("message"));
    assert.deepEqual(messages.map((l) => l.split("|").slice(1).join(": ")), said);
    // Text, not HTML: no <b> element was made.
    assert.equal(await tab.page.locator("#messages b").count(), 0);
  }
  assert.equal(await alice.page.locator("#messages li.mine").count(), 1, "alice's own line is marked");

  await screenshot(bob.page, "room-bob");
  // Closing bob's tab closes its socket: alice sees the leave and count 1.
  await bob.page.close();
  await alice.page.locator("#messages li.leave", { hasText: "bob left" }).waitFor({ timeout: 10000 });
  await online(alice.page, 1);
  assert.equal(await alice.page.locator("#online").innerText(), "1 online");
  await screenshot(alice.page, "room-alice");

  assert.deepEqual(await lines(alice.page), [
    "notice join|alice| joined",
    "notice join|bob| joined",
    "message mine|alice|hello from alice <b>not bold</b>",
    "message|bob|hi alice, bob here",
    "notice leave|bob| left",
  ]);
  assert.deepEqual(alice.errors, [], "no page errors");
  assert.deepEqual(bob.errors, [], "no page errors");
  await alice.page.close();
});
