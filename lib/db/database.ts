import { fileURLToPath } from "node:url";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { type Client, createClient } from "@libsql/client";
import { drizzle, type LibSQLDatabase } from "drizzle-orm/libsql";
import { migrate } from "drizzle-orm/libsql/migrator";
import * as schema from "./schema/index.ts";
import { Mutex } from "../mutex.ts";
import { DomainError, unavailable } from "../errors.ts";
import { gateSingleConnection } from "./single-connection.ts";
import { cachePreparedStatements } from "./statement-cache.ts";
import { logger } from "../log.ts";

const log = logger("database");

export type Orm = LibSQLDatabase<typeof schema>;
/** The handle a write callback receives; inside it every statement runs in one transaction. */
export type Transaction = Parameters<Parameters<Orm["transaction"]>[0]>[0];

const MIGRATIONS_FOLDER = fileURLToPath(new URL("./migrations", import.meta.url));

/** Connection settings: a libSQL URL, and for embedded replicas the primary to sync from. */
export interface DatabaseOptions {
  url: string;
  authToken?: string | null;
  syncUrl?: string | null;
  syncIntervalSeconds?: number;
}

/**
 * The daemon's database: Drizzle over libSQL. Reads use `orm` directly. Every write goes through
 * `write`, which serialises writers in this process, because a second writer on an embedded file
 * would fail with SQLITE_BUSY instead of waiting. An embedded file gets a second client with one
 * connection for the writes, so that connection's settings hold for every write.
 */
export class Database {
  readonly orm: Orm;
  readonly client: Client;
  readonly #writer: Orm;
  readonly #writerClient: Client;
  /** The primary an embedded replica forwards writes to, or the server of a remote URL; null for a plain file. */
  readonly primaryUrl: string | null;
  /** Name of the controller this process serves; recorded on jobs so a restart fails only its own. */
  controllerName = "controller";
  readonly #writeLock = new Mutex();

  constructor(client: Client, primaryUrl: string | null = null, writerClient: Client = client) {
    this.client = client;
    this.primaryUrl = primaryUrl;
    this.orm = drizzle(client, { schema });
    this.#writerClient = writerClient;
    this.#writer = writerClient === client ? this.orm : drizzle(writerClient, { schema });
  }

  /**
   * Runs `fn` in one write transaction, committed when it resolves and rolled back when it throws.
   * When the write fails because the primary cannot be reached, throws `unavailable` instead.
   */
  write<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.#writeLock.run(async () => {
      try {
        return await this.#writer.transaction(fn);
      } catch (error) {
        if (error instanceof DomainError || this.primaryUrl === null) throw error;
        if (await isReachable(this.primaryUrl)) throw error;
        throw unavailable(`Cannot write: the primary database ${redactUrl(this.primaryUrl)} cannot be reached`, error);
      }
    });
  }

  close(): void {
    if (this.#writerClient !== this.client) this.#writerClient.close();
    this.client.close();
  }
}

/** Opens the database named by `options`, enables WAL for files, and applies pending migrations. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.url.startsWith("file:")) {
    mkdirSync(dirname(options.url.slice("file:".length)), { recursive: true });
  }

  // Embedded replicas forward writes through their connection; keep their statements uncached.
  if (!options.syncUrl) cachePreparedStatements();
  let client: Client;
  try {
    client = createClient({
      url: options.url,
      authToken: options.authToken ?? undefined,
      syncUrl: options.syncUrl ?? undefined,
      syncInterval: options.syncUrl ? options.syncIntervalSeconds : undefined,
    });
    let writerClient = client;
    if (options.url.startsWith("file:") && !options.syncUrl) {
      await client.execute("PRAGMA journal_mode = WAL");
      writerClient = createClient({ url: options.url, concurrency: 1 });
      // In WAL mode NORMAL never corrupts the database: a power loss can lose only the last
      // commits, and each commit no longer waits for a disk flush.
      await writerClient.execute("PRAGMA synchronous = NORMAL");
    }
    if (options.syncUrl) {
      // Start from the primary's current state; without it, serve what the local replica has.
      await client.sync().catch((error: Error) => log.warning("Cannot sync the replica from {primary} at start: {error}", { primary: redactUrl(options.syncUrl!), error: error.message }));
    }
    if (options.syncUrl || options.url === "file::memory:" || options.url === ":memory:") {
      client = gateSingleConnection(client);
      writerClient = client;
    }
    const primaryUrl = options.syncUrl ?? (options.url.startsWith("file:") ? null : options.url);
    const database = new Database(client, primaryUrl, writerClient);
    await migrate(drizzle(writerClient), { migrationsFolder: MIGRATIONS_FOLDER });
    return database;
  } catch (error) {
    throw unavailable(`Cannot open database ${redactUrl(options.url)}: ${(error as Error).message}`, error);
  }
}

/** Removes credentials from a database URL before it is logged or shown. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^/@]*@/, "//***@").replace(/([?&]authToken=)[^&]*/i, "$1***");
}

/** Asks a libSQL server's /health endpoint whether it is up, within two seconds. */
export async function isReachable(url: string): Promise<boolean> {
  const base = url.replace(/^libsql:/, "https:").replace(/^ws(s?):/, "http$1:").replace(/\/+$/, "");
  try {
    const response = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}
