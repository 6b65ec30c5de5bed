// Runs the gocable binary as a child and makes sure it never outlives the
// test process that started us:
//
//   node supervise.js /path/to/gocable [gocable flags...]
//
// * Our stdin is a pipe from the test process. When it closes (the test
//   process exited, crashed, or was SIGKILLed), gocable is SIGKILLed.
// * SIGTERM / SIGINT sent to us are forwarded to gocable, so a test can
//   trigger gocable's graceful shutdown through us.
// * We exit with gocable's exit status (128 + signal number if it died
//   from a signal).
import { spawn } from "node:child_process";
import { constants } from "node:os";

const [bin, ...args] = process.argv.slice(2);
if (!bin) {
  console.error("usage: supervise.js GOCABLE_BIN [flags...]");
  process.exit(2);
}

const child = spawn(bin, args, { stdio: ["ignore", "inherit", "inherit"] });
let exited = false;

child.on("error", (err) => {
  console.error(`supervise: cannot start ${bin}: ${err.message}`);
  process.exit(127);
});
child.on("exit", (code, signal) => {
  exited = true;
  process.exit(code ?? 128 + (constants.signals[signal] ?? 0));
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    if (!exited) child.kill(sig);
  });
}

// Parent gone (pipe closed): no graceful anything, just make sure it dies.
process.stdin.on("end", () => {
  if (!exited) child.kill("SIGKILL");
});
process.stdin.on("error", () => {
  if (!exited) child.kill("SIGKILL");
});
process.stdin.resume();
