import { fileURLToPath } from "node:url";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { type Client, createClient } from "@libsql/client";
import { drizzle, type LibSQLDatabase } from "drizzle-orm/libsql";
import { migrate } from "drizzle-orm/libsql/migrator";
import * as schema from "./schema/index.ts";
import { Mutex } from "../mutex.ts";
import { unavailable } from "../errors.ts";

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
 * The daemon's database: Drizzle over one libSQL client. Reads use `orm` directly. Every write
 * goes through `write`, which serialises writers in this process, because a second writer on an
 * embedded file would fail with SQLITE_BUSY instead of waiting.
 */
export class Database {
  readonly orm: Orm;
  readonly client: Client;
  readonly #writeLock = new Mutex();

  constructor(client: Client) {
    this.client = client;
    this.orm = drizzle(client, { schema });
  }

  /** Runs `fn` in one write transaction, committed when it resolves and rolled back when it throws. */
  write<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.#writeLock.run(() => this.orm.transaction(fn));
  }

  close(): void {
    this.client.close();
  }
}

/** Opens the database named by `options`, enables WAL for files, and applies pending migrations. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.url.startsWith("file:")) {
    mkdirSync(dirname(options.url.slice("file:".length)), { recursive: true });
  }

  let client: Client;
  try {
    client = createClient({
      url: options.url,
      authToken: options.authToken ?? undefined,
      syncUrl: options.syncUrl ?? undefined,
      syncInterval: options.syncUrl ? options.syncIntervalSeconds : undefined,
    });
    if (options.url.startsWith("file:") && !options.syncUrl) {
      await client.execute("PRAGMA journal_mode = WAL");
    }
    const database = new Database(client);
    await migrate(database.orm, { migrationsFolder: MIGRATIONS_FOLDER });
    return database;
  } catch (error) {
    throw unavailable(`Cannot open database ${redactUrl(options.url)}: ${(error as Error).message}`, error);
  }
}

/** Removes credentials from a database URL before it is logged or shown. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^/@]*@/, "//***@").replace(/([?&]authToken=)[^&]*/i, "$1***");
}
