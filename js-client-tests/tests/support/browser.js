// Real-browser support: Debian's headless Chromium driven by playwright-core
// (which downloads no browser), screenshots into artifacts/, and checks
// that the demo's npm bundles were built into the gocable binary.
//
// Chromium comes from the distribution (apt-get install chromium); set
// CHROMIUM_PATH to use another build. Each browser gets a fresh profile
// directory, removed when it closes.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const demoStatic = join(root, "..", "cable", "runner", "demo", "static");

export const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** The flags every test browser runs with (no network beyond the test server). */
export const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Throws with the fix when Chromium or the demo bundles are missing. */
export function requireBrowserPrerequisites() {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `no Chromium at ${chromiumPath}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH`,
    );
  }
  for (const f of ["actioncable.esm.js", "turbo.js"]) {
    if (!existsSync(join(demoStatic, f))) {
      throw new Error(
        `cable/runner/demo/static/${f} is missing: run \`npm run demo-assets\` (npm test does) before building gocable`,
      );
    }
  }
}

/**
 * Launches Chromium with a fresh user-data-dir. Returns the browser
 * context (new pages are tabs of one window) and close(), which also
 * removes the profile.
 */
export async function launchBrowser() {
  requireBrowserPrerequisites();
  const profile = mkdtempSync(join(tmpdir(), "gocable-chromium-"));
  // Playwright passes the profile as --user-data-dir itself.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: chromiumArgs,
    viewport: { width: 800, height: 640 },
  });
  let closed = false;
  return {
    context,
    async close() {
      if (closed) return;
      closed = true;
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** js-client-tests/artifacts/, which ignores itself in git. */
export function artifactsDir() {
  const dir = join(root, "artifacts");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, ".gitignore"), "# screenshots of the browser tests\n*\n");
  return dir;
}

/** Saves a full-page PNG of page as artifacts/<name>.png and returns its path. */
export async function screenshot(page, name) {
  const path = join(artifactsDir(), `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * Records the ActionCable frames of every WebSocket the page opens:
 * [{dir: "sent"|"received", data: parsed JSON}], pings left out.
 */
export function recordCableFrames(page) {
  const frames = [];
  page.on("websocket", (ws) => {
    const record = (dir) => (f) => {
      let data;
      try {
        data = JSON.parse(f.payload);
      } catch {
        data = f.payload;
      }
      if (data?.type !== "ping") frames.push({ dir, data });
    };
    ws.on("framesent", record("sent"));
    ws.on("framereceived", record("received"));
  });
  return frames;
}

/** Collects the page's console errors and uncaught exceptions. */
export function recordPageErrors(page) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  return errors;
}
