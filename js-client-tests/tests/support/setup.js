// Per-file setup: one gocable server for the whole file, and cleanup that
// always runs (consumers first, so they do not try to reconnect to a
// stopping server, then the server).
import { after, before } from "node:test";
import { closeAllClients, closeAllRaw } from "./cable.js";
import { startServer, stopAllServers } from "./server.js";

export function useServer(args = []) {
  const ctx = { server: undefined };
  before(async () => {
    ctx.server = await startServer({ args });
  });
  after(async () => {
    closeAllClients();
    closeAllRaw();
    await stopAllServers();
  });
  return ctx;
}
