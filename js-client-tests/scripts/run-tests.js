// npm test: builds the gocable binary once, runs every tests/*.test.js with
// Node's test runner (each file starts its own server on a free port),
// then removes the binary. Extra arguments are test files to run instead
// of all of them.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
let bin = process.env.GOCABLE_BIN;
let tmp;
const cleanup = () => tmp && rmSync(tmp, { recursive: true, force: true });

if (!bin) {
  tmp = mkdtempSync(join(tmpdir(), "gocable-js-"));
  bin = join(tmp, "gocable");
  const started = Date.now();
  const r = spawnSync("go", ["build", "-o", bin, "../cmd/gocable"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) {
    cleanup();
    console.error(`go build ../cmd/gocable failed (${r.error?.message ?? `status ${r.status}`})`);
    process.exit(1);
  }
  console.log(`# built ../cmd/gocable in ${Date.now() - started} ms`);
}

const args = process.argv.slice(2);
const files = args.length
  ? args
  : readdirSync(join(root, "tests"))
      .filter((f) => f.endsWith(".test.js"))
      .sort()
      .map((f) => join("tests", f));

const flags = ["--test", `--test-concurrency=${files.length}`];
if (process.allowedNodeEnvironmentFlags.has("--test-force-exit")) flags.push("--test-force-exit");

const child = spawn(process.execPath, [...flags, ...files], {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, GOCABLE_BIN: bin },
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code, signal) => {
  cleanup();
  process.exit(code ?? 1);
});
