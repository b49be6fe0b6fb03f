import { createWriteStream, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { Writable } from "node:stream";
import {
  configure,
  getJsonLinesFormatter,
  getLogger,
  getStreamSink,
  type Logger,
  type LogRecord,
  reset,
  type Sink,
} from "@logtape/logtape";
import type { LogLevel } from "./config.ts";

/** Root logger category of the daemon. */
export const LOG_CATEGORY = "luna2";

/** Returns the logger for one part of the daemon, e.g. `logger("http")`. */
export function logger(...category: string[]): Logger {
  return getLogger([LOG_CATEGORY, ...category]);
}

/**
 * Sends JSON lines to stderr and, when `logfile` is set, appends them to that file too.
 * Messages never carry request bodies, tokens, passwords or secrets: callers pass only ids.
 */
export async function setupLogging(level: LogLevel, logfile: string | null): Promise<void> {
  const jsonLine = getJsonLinesFormatter();
  const formatter = (record: Parameters<typeof jsonLine>[0]) => {
    const line = jsonLine(record);
    return line.endsWith("\n") ? line : line + "\n";
  };
  const sinks: Record<string, Sink> = { console: batchedStderrSink(formatter) };
  if (logfile) {
    mkdirSync(dirname(logfile), { recursive: true });
    const stream = Writable.toWeb(createWriteStream(logfile, { flags: "a", mode: 0o640 }));
    sinks.file = getStreamSink(stream as WritableStream, { formatter });
  }
  await configure({
    reset: true,
    sinks,
    loggers: [
      { category: [LOG_CATEGORY], lowestLevel: level, sinks: Object.keys(sinks) },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
    ],
  });
}

/**
 * Returns a sink that collects the lines of one event-loop turn and writes them to stderr at
 * once. Writes to a pipe are synchronous on Linux, so one write per log line cost about a tenth
 * of the CPU time of a boot storm. The sink flushes when logging is reset or disposed.
 */
function batchedStderrSink(format: (record: LogRecord) => string): Sink & Disposable {
  let pending: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join("");
    pending = [];
    process.stderr.write(text);
  };
  const sink = (record: LogRecord) => {
    pending.push(format(record));
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  return Object.assign(sink, { [Symbol.dispose]: flush });
}

/** Stops logging and flushes sinks; used at shutdown and between tests. */
export async function stopLogging(): Promise<void> {
  await reset();
}


/**
 * Describes an error for a log line. Drizzle query errors carry the statement's bound
 * parameters, which may include passwords or secrets, so only the statement and cause are kept.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const text = error.stack ?? `${error.name}: ${error.message}`;
  if (!("params" in error) && !text.includes("\nparams:")) return text;
  const query = "query" in error ? String((error as { query: unknown }).query) : "(statement not shown)";
  const cause = error.cause instanceof Error ? error.cause.message : "unknown cause";
  return `Database query failed: ${cause}; statement: ${query}`;
}
