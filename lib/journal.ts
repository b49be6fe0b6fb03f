import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { asc, eq, ne } from "drizzle-orm";
import * as v from "valibot";
import type { Database } from "./db/database.ts";
import { controller, journal } from "./db/schema/index.ts";
import { invalid } from "./errors.ts";
import { TEMPORARY_SUFFIX } from "./files.ts";
import { createJob, setJobState } from "./jobs.ts";
import { describeError, logger } from "./log.ts";
import type { Services } from "./services.ts";
import { Templates } from "./templates.ts";

const log = logger("journal");

/** Suffix of a file being downloaded, so /files never serves it. */
const PARTIAL_SUFFIX = TEMPORARY_SUFFIX;

/** Attempts per task before it is dropped and reported as failed. */
export const MAX_TRIES = 5;

/** A packed file another controller announces, with what its copy must match. */
const AnnouncedFile = v.strictObject({
  name: v.pipe(v.string(), v.regex(/^[A-Za-z0-9._+-]+$/, "must be a file name without a path"), v.check((name) => !name.startsWith("."), "must not start with '.'")),
  size: v.pipe(v.number(), v.integer(), v.minValue(0)),
  sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, "must be a lower-case SHA-256 hex digest")),
});

/** The closed set of journal tasks and their payloads. */
export const JournalTask = v.variant("task", [
  v.strictObject({
    controller: v.pipe(v.string(), v.minLength(1), v.maxLength(100)),
    task: v.literal("fetch_files"),
    payload: v.strictObject({ source: v.pipe(v.string(), v.minLength(1)), osimage: v.optional(v.string()), files: v.pipe(v.array(AnnouncedFile), v.minLength(1)) }),
  }),
  v.strictObject({
    controller: v.pipe(v.string(), v.minLength(1), v.maxLength(100)),
    task: v.picklist(["regenerate_dhcp", "regenerate_dns", "reload_templates"]),
    payload: v.optional(v.record(v.string(), v.unknown())),
  }),
]);
export type JournalTaskInput = v.InferOutput<typeof JournalTask>;

/** A stored journal entry as GET /journal/{controller} returns it. */
export interface JournalEntry {
  id: number;
  controller: string;
  task: string;
  payload: unknown;
  sent_by: string | null;
  tries: number;
  created: number;
}

/** Stores tasks for their controllers, all in one transaction. */
export async function insertJournal(db: Database, tasks: JournalTaskInput[], sentBy: string | null, now: number): Promise<void> {
  if (tasks.length === 0) throw invalid("Invalid request: journal must contain at least one task");
  await db.write(async (tx) => {
    for (const task of tasks) {
      await tx.insert(journal).values({
        controller: task.controller,
        task: task.task,
        payload: task.payload === undefined ? null : JSON.stringify(task.payload),
        sent_by: sentBy,
        created: now,
      });
    }
  });
}

/** Lists a controller's pending tasks in the order they run. */
export async function listJournal(db: Database, controllerName: string): Promise<JournalEntry[]> {
  const rows = await db.orm.select().from(journal).where(eq(journal.controller, controllerName)).orderBy(asc(journal.id));
  return rows.map((row) => ({ ...row, payload: row.payload === null ? null : JSON.parse(row.payload) }));
}

/** Removes every pending task of a controller and returns how many there were. */
export async function deleteJournal(db: Database, controllerName: string): Promise<number> {
  const deleted = await db.write((tx) => tx.delete(journal).where(eq(journal.controller, controllerName)).returning({ id: journal.id }));
  return deleted.length;
}

/** Computes the size and SHA-256 of a file by streaming it. */
export async function fileDigest(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest("hex") };
}

/**
 * Tells every other controller that new packed files exist here, as `fetch_files` journal
 * tasks. Does nothing when HA is off or this controller is alone.
 */
export async function announceFiles(services: Services, osimageName: string, names: string[]): Promise<void> {
  if (!services.config.ha.enabled) return;
  const self = services.config.ha.controllerName;
  const peers = await services.db.orm.select({ hostname: controller.hostname }).from(controller).where(ne(controller.hostname, self));
  if (peers.length === 0) return;
  const files: v.InferOutput<typeof AnnouncedFile>[] = [];
  for (const name of names) files.push({ name, ...(await fileDigest(join(services.config.files.imageFiles, name))) });
  await insertJournal(
    services.db,
    peers.map((peer) => ({ controller: peer.hostname, task: "fetch_files" as const, payload: { source: self, osimage: osimageName, files } })),
    self,
    services.clock.now(),
  );
  log.info("Announced {count} files of osimage {image} to {peers} controllers", { count: files.length, image: osimageName, peers: peers.length });
}

/** Downloads announced files from the source controller, verifies size and checksum, and renames each into place. */
async function fetchFiles(services: Services, payload: { source: string; files: v.InferOutput<typeof AnnouncedFile>[] }): Promise<void> {
  const [source] = await services.db.orm.select({ endpoint: controller.endpoint }).from(controller).where(eq(controller.hostname, payload.source));
  if (!source?.endpoint) throw new Error(`controller "${payload.source}" has no endpoint to fetch files from`);
  const token = await services.tokens.issueAdmin();
  const directory = services.config.files.imageFiles;
  await mkdir(directory, { recursive: true });

  for (const file of payload.files) {
    const target = join(directory, file.name);
    const existing = await fileDigest(target).catch(() => null);
    if (existing && existing.size === file.size && existing.sha256 === file.sha256) continue;

    const partial = target + PARTIAL_SUFFIX;
    const response = await fetch(`${source.endpoint.replace(/\/+$/, "")}/files/${encodeURIComponent(file.name)}`, {
      headers: { "x-access-tokens": token },
      signal: AbortSignal.timeout(3600_000),
    });
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new Error(`GET ${file.name} from controller "${payload.source}" failed with status ${response.status}`);
    }
    const hash = createHash("sha256");
    let size = 0;
    const counted = Readable.fromWeb(response.body as import("node:stream/web").ReadableStream).map((chunk: Buffer) => {
      hash.update(chunk);
      size += chunk.length;
      return chunk;
    });
    try {
      await pipeline(counted, createWriteStream(partial, { mode: 0o644 }));
      const sha256 = hash.digest("hex");
      if (size !== file.size || sha256 !== file.sha256) {
        throw new Error(`${file.name} from controller "${payload.source}" does not match: ${size} bytes, sha256 ${sha256}; expected ${file.size} bytes, sha256 ${file.sha256}`);
      }
      await rename(partial, target);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
    log.info("Fetched {file} from controller {source}", { file: file.name, source: payload.source });
  }
}

/** Handlers of the tasks other than fetch_files, registered by the parts of the daemon that own them. */
export type TaskHandler = (services: Services, payload: unknown) => Promise<void>;

/**
 * Drains this controller's journal in id order. A task that fails stays for a retry, up to
 * MAX_TRIES; each failure is recorded as a failed job so it shows in the request status.
 */
export class JournalWorker {
  readonly #services: Services;
  readonly #handlers = new Map<string, TaskHandler>();
  #timer: ReturnType<typeof setInterval> | null = null;
  #running: Promise<void> | null = null;

  constructor(services: Services) {
    this.#services = services;
    this.#handlers.set("fetch_files", (servicesArgument, payload) => fetchFiles(servicesArgument, payload as never));
    this.#handlers.set("reload_templates", (servicesArgument) => {
      servicesArgument.templates = new Templates(servicesArgument.config.templates.directory);
      return Promise.resolve();
    });
  }

  /** Registers the code that runs a task type, e.g. DHCP regeneration. */
  register(task: string, handler: TaskHandler): void {
    this.#handlers.set(task, handler);
  }

  start(): void {
    const interval = this.#services.config.ha.journalIntervalSeconds * 1000;
    this.#timer = setInterval(() => void this.drain(), interval);
    this.#timer.unref?.();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  /** Runs every pending task once, in order; concurrent calls share one run. */
  drain(): Promise<void> {
    this.#running ??= this.#drainOnce().finally(() => (this.#running = null));
    return this.#running;
  }

  async #drainOnce(): Promise<void> {
    const { db, clock, config } = this.#services;
    let entries: JournalEntry[];
    try {
      entries = await listJournal(db, config.ha.controllerName);
    } catch (error) {
      log.warning("Cannot read the journal: {error}", { error: describeError(error) });
      return;
    }
    for (const entry of entries) {
      const handler = this.#handlers.get(entry.task);
      try {
        if (!handler) throw new Error(`no handler for task "${entry.task}" on this controller`);
        await handler(this.#services, entry.payload);
        await db.write((tx) => tx.delete(journal).where(eq(journal.id, entry.id)));
        log.info("Ran journal task {id} {task}", { id: entry.id, task: entry.task });
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        log.error("Journal task {id} {task} failed: {error}", { id: entry.id, task: entry.task, error: describeError(error) });
        const tries = entry.tries + 1;
        try {
          await db.write((tx) =>
            tries >= MAX_TRIES ? tx.delete(journal).where(eq(journal.id, entry.id)) : tx.update(journal).set({ tries }).where(eq(journal.id, entry.id)));
          const { requestId } = await createJob(db, clock, { kind: "journal", object: `${config.ha.controllerName}:${entry.id}:${tries}`, params: entry });
          await setJobState(db, clock, requestId, "failed", `journal task ${entry.id} ${entry.task} failed (try ${tries} of ${MAX_TRIES}): ${reason}`, 500);
        } catch (recordError) {
          // Without a writable database (primary down) the failure can only be logged.
          log.error("Cannot record the failure of journal task {id}: {error}", { id: entry.id, error: describeError(recordError) });
        }
        // Later tasks may depend on this one, so the journal stops here until the next drain.
        return;
      }
    }
  }
}
