import { randomUUID } from "node:crypto";
import { and, asc, eq, inArray } from "drizzle-orm";
import type { Database } from "./db/database.ts";
import { job, jobMessage } from "./db/schema/index.ts";
import { notFound } from "./errors.ts";
import { describeError, logger } from "./log.ts";
import type { Clock } from "./clock.ts";

const log = logger("jobs");

/** Message length kept per status line, as the original daemon truncates them. */
const MAX_MESSAGE_CHARS = 4096;

export type JobState = "queued" | "running" | "done" | "failed";

/** Request for a job: an operation `kind` on `object`, with JSON `params`. */
export interface JobRequest {
  kind: string;
  object: string;
  params?: unknown;
  username?: string | null;
  controller?: string | null;
}

/** A created or joined job. */
export interface JobHandle {
  requestId: string;
  /** True when an identical job was already queued or running and its id is returned. */
  existing: boolean;
}

/**
 * Creates a queued job, or returns the queued or running job of the same kind on the same
 * object, so a repeated request joins the first one.
 */
export async function createJob(db: Database, clock: Clock, request: JobRequest): Promise<JobHandle> {
  return db.write(async (tx) => {
    const [active] = await tx
      .select({ requestId: job.request_id })
      .from(job)
      .where(and(eq(job.kind, request.kind), eq(job.object, request.object), inArray(job.state, ["queued", "running"])));
    if (active) return { requestId: active.requestId, existing: true };

    const requestId = randomUUID();
    const now = clock.now();
    await tx.insert(job).values({
      request_id: requestId,
      kind: request.kind,
      object: request.object,
      state: "queued",
      params: request.params === undefined ? null : JSON.stringify(request.params),
      username: request.username ?? null,
      controller: request.controller ?? db.controllerName,
      created: now,
      updated: now,
    });
    return { requestId, existing: false };
  });
}

/** Appends a status line to a job; `status` other than 200 marks the step as failed. */
export async function addJobMessage(db: Database, clock: Clock, requestId: string, message: string, status = 200): Promise<void> {
  await db.write((tx) =>
    tx.insert(jobMessage).values({ request_id: requestId, message: message.slice(0, MAX_MESSAGE_CHARS), status, created: clock.now() }));
}

/** Moves a job to `state`, appending `message` first when given, in one transaction. */
export async function setJobState(db: Database, clock: Clock, requestId: string, state: JobState, message?: string, status = 200): Promise<void> {
  const now = clock.now();
  await db.write(async (tx) => {
    if (message !== undefined) {
      await tx.insert(jobMessage).values({ request_id: requestId, message: message.slice(0, MAX_MESSAGE_CHARS), status, created: now });
    }
    await tx.update(job).set({ state, updated: now }).where(eq(job.request_id, requestId));
  });
}

/** Formats a timestamp as the original's status lines do: `YYYY-MM-DD HH:MM:SS` in UTC. */
export function formatStatusTime(milliseconds: number): string {
  return new Date(milliseconds).toISOString().slice(0, 19).replace("T", " ");
}

/**
 * Returns the lines of a job not read yet, joined with `;;` as `<time> :: <message>`, and marks
 * them read. `status` is 200 unless a returned line failed. Once the job has ended and every
 * line was read, the job is gone: throws `notFound` with the original's message.
 */
export async function readJobStatus(db: Database, requestId: string): Promise<{ message: string; status: number }> {
  return db.write(async (tx) => {
    const [row] = await tx.select({ state: job.state }).from(job).where(eq(job.request_id, requestId));
    if (!row) throw notFound("No data for this request");

    const unread = await tx
      .select()
      .from(jobMessage)
      .where(and(eq(jobMessage.request_id, requestId), eq(jobMessage.read, false)))
      .orderBy(asc(jobMessage.id));
    const ended = row.state === "done" || row.state === "failed";
    if (unread.length === 0 && ended) {
      await tx.delete(job).where(eq(job.request_id, requestId));
      throw notFound("No data for this request");
    }

    if (unread.length > 0) {
      await tx.update(jobMessage).set({ read: true }).where(inArray(jobMessage.id, unread.map((line) => line.id)));
    }
    let status = 200;
    for (const line of unread) if (line.status !== 200) status = line.status;
    return { message: unread.map((line) => `${formatStatusTime(line.created)} :: ${line.message}`).join(";;"), status };
  });
}

/** Marks jobs that were queued or running when the daemon stopped as failed, with a message. */
export async function failInterruptedJobs(db: Database, clock: Clock, controller: string | null = db.controllerName): Promise<number> {
  const active = await db.orm
    .select({ requestId: job.request_id })
    .from(job)
    .where(and(inArray(job.state, ["queued", "running"]), controller === null ? undefined : eq(job.controller, controller)));
  for (const { requestId } of active) {
    await setJobState(db, clock, requestId, "failed", "interrupted: the daemon restarted before this job finished", 500);
  }
  if (active.length > 0) log.warning("Marked {count} interrupted jobs as failed", { count: active.length });
  return active.length;
}

/** Progress reporting handed to a running job. */
export interface JobReporter {
  requestId: string;
  /** Appends a progress line (status 200). */
  info(message: string): Promise<void>;
  /** Appends a failure line for one step (default status 500); the job goes on. */
  error(message: string, status?: number): Promise<void>;
}

/**
 * Runs `work` for a created job in the background: marks it running, then done when `work`
 * resolves or failed (with the error message) when it throws. Returns the promise of the whole
 * run, which never rejects, so callers may await it in tests and ignore it in handlers.
 */
export function runJob(db: Database, clock: Clock, requestId: string, work: (reporter: JobReporter) => Promise<void>): Promise<void> {
  const reporter: JobReporter = {
    requestId,
    info: (message) => addJobMessage(db, clock, requestId, message),
    error: (message, status = 500) => addJobMessage(db, clock, requestId, message, status),
  };
  return (async () => {
    try {
      await setJobState(db, clock, requestId, "running");
      await work(reporter);
      await setJobState(db, clock, requestId, "done");
    } catch (error) {
      log.error("Job {requestId} failed: {error}", { requestId, error: describeError(error) });
      const text = error instanceof Error ? error.message : String(error);
      await setJobState(db, clock, requestId, "failed", `failed: ${text}`, 500).catch((stateError) =>
        log.error("Cannot record the failure of job {requestId}: {error}", { requestId, error: describeError(stateError) }));
    }
  })();
}
