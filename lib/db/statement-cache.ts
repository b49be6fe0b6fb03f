import Libsql from "libsql";

/** Prepared read statements kept per connection; past this, the oldest is dropped. */
const MAX_STATEMENTS_PER_CONNECTION = 256;

let installed = false;

/** Statements that only read: SELECT, or WITH followed by a SELECT. */
const READ_ONLY = /^\s*(select|with)\b/i;

/**
 * Makes every embedded libSQL connection reuse its prepared read statements. @libsql/client
 * prepares each statement again on every call. For the short lookups a boot storm repeats
 * (boot script by MAC, install script) that was about a quarter of the CPU time. Statements
 * that write are not cached, because they are cheap to prepare compared with their commit.
 * NOTE: a WITH that ends in a write would pass READ_ONLY; the daemon sends none.
 */
export function cachePreparedStatements(): void {
  if (installed) return;
  installed = true;

  type Statement = { reader: boolean; columns(): unknown[] };
  const prototype = (Libsql as unknown as { prototype: { prepare(this: object, sql: string): Statement } }).prototype;
  const prepare = prototype.prepare;
  const caches = new WeakMap<object, Map<string, Statement>>();

  prototype.prepare = function cachedPrepare(this: object, sql: string): Statement {
    let cache = caches.get(this);
    if (!cache) caches.set(this, (cache = new Map()));
    const cached = cache.get(sql);
    if (cached) return cached;

    const statement = prepare.call(this, sql);
    // Only plain reads: a cached INSERT ... RETURNING on an embedded replica loses its rows on Deno.
    if (!statement.reader || !READ_ONLY.test(sql)) return statement;
    // @libsql/client reads a statement's columns twice per call, and they never change.
    const columns = statement.columns();
    statement.columns = () => columns;
    if (cache.size >= MAX_STATEMENTS_PER_CONNECTION) cache.delete(cache.keys().next().value!);
    cache.set(sql, statement);
    return statement;
  };
}
