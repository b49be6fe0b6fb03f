import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../lib/app.ts";
import { bootstrapIfEmpty } from "../lib/bootstrap.ts";
import { FrozenClock } from "../lib/clock.ts";
import { type Config, parseConfig } from "../lib/config.ts";
import { type Database, openDatabase } from "../lib/db/database.ts";
import { type CommandResult, type CommandSpec, type Hardware, systemHardware } from "../lib/hardware/index.ts";
import { ensureKeyFile } from "../lib/secrets.ts";
import type { Services } from "../lib/services.ts";

/** Start of the frozen clock in tests: 2026-01-01T00:00:00Z. */
export const TEST_EPOCH = Date.UTC(2026, 0, 1);
export const TEST_PASSWORD = "test password with spaces, 'quotes' and $dollar";

/** A hardware adapter that records every command and returns scripted replies. */
export class RecordingHardware implements Hardware {
  readonly calls: CommandSpec[] = [];
  reply: (spec: CommandSpec) => Promise<CommandResult> = () =>
    Promise.resolve({ exitCode: 0, stdout: "", stderr: "", durationMs: 0 });

  run(spec: CommandSpec): Promise<CommandResult> {
    this.calls.push(spec);
    return this.reply(spec);
  }
}

/** An app on a fresh database migrated with the real migrations and bootstrapped. */
export interface TestApp {
  app: ReturnType<typeof createApp>["app"];
  services: Services;
  db: Database;
  config: Config;
  clock: FrozenClock;
  hardware: RecordingHardware;
  directory: string;
  /** A valid admin token. */
  token: string;
  /** Sends a request with the admin token unless `headers` overrides it. */
  request(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  close(): Promise<void>;
}

/** Writes a test luna.ini into `directory` and parses it; `extra` is appended verbatim. */
export function testConfig(directory: string, extra = "", databaseUrl?: string, syncUrl?: string): Config {
  const text = [
    "[API]",
    "USERNAME = luna",
    `PASSWORD = ${TEST_PASSWORD}`,
    "SECRET_KEY = test-secret-key-of-enough-length-0123456789",
    "EXPIRY = 1h",
    "LISTEN = 127.0.0.1:7050",
    "[DATABASE]",
    databaseUrl ? `URL = ${databaseUrl}` : "DATABASE = luna.db",
    syncUrl ? `SYNC_URL = ${syncUrl}` : "",
    extra,
  ].join("\n");
  return parseConfig(text, join(directory, "luna.ini"));
}

/** Builds an app in-process on a fresh database in a new temporary directory. */
export async function createTestApp(
  options: { bootstrap?: boolean; configExtra?: string; databaseUrl?: string; syncUrl?: string; realHardware?: boolean } = {},
): Promise<TestApp> {
  const directory = mkdtempSync(join(tmpdir(), "luna2-test-"));
  const databaseUrl = options.syncUrl ? `file:${join(directory, "replica.db")}` : options.databaseUrl;
  const config = testConfig(directory, options.configExtra ?? "", databaseUrl, options.syncUrl);
  ensureKeyFile(config.files.keyfile);
  const db = await openDatabase(config.database);
  const clock = new FrozenClock(TEST_EPOCH);
  if (options.bootstrap !== false) await bootstrapIfEmpty(db, config, clock.now());
  const hardware = new RecordingHardware();
  // With realHardware the commands really run, and are still recorded for assertions.
  if (options.realHardware) hardware.reply = (spec) => systemHardware.run(spec);
  const { app, services } = createApp({ config, db, hardware, clock });
  const token = await services.tokens.issueAdmin();

  return {
    app,
    services,
    db,
    config,
    clock,
    hardware,
    directory,
    token,
    request(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has("x-access-tokens")) headers.set("x-access-tokens", token);
      const body = init.json === undefined ? init.body : JSON.stringify(init.json);
      if (init.json !== undefined) headers.set("content-type", "application/json");
      return Promise.resolve(app.request(path, { ...init, headers, body }));
    },
    async close() {
      db.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
