import { asc, desc, eq, inArray } from "drizzle-orm";
import type { Database } from "./db/database.ts";
import { job, jobMessage } from "./db/schema/index.ts";
import { formatStatusTime } from "./jobs.ts";

/** Most rows GET /monitor/status returns, newest first. */
const MAX_STATUS_ROWS = 1000;

/** Lists queued and running jobs in the shape luna2-cli's `luna monitor queue` reads. */
export async function listQueue(db: Database): Promise<Record<string, unknown>[]> {
  const rows = await db.orm.select().from(job).where(inArray(job.state, ["queued", "running"])).orderBy(asc(job.created));
  return rows.map((row, index) => ({
    created: formatStatusTime(row.created),
    level: "maintask",
    queue_id: index + 1,
    request_id: row.request_id,
    status: row.state === "running" ? "in progress" : "queued",
    subsystem: row.kind,
    task: `${row.kind} ${row.object}`,
    username_initiator: row.username,
  }));
}

/** Lists recent job status lines, newest first, in the shape `luna monitor status` reads. */
export async function listStatusMessages(db: Database): Promise<Record<string, unknown>[]> {
  const rows = await db.orm
    .select({ message: jobMessage, username: job.username })
    .from(jobMessage)
    .innerJoin(job, eq(job.request_id, jobMessage.request_id))
    .orderBy(desc(jobMessage.id))
    .limit(MAX_STATUS_ROWS);
  return rows.map(({ message, username }) => ({
    created: formatStatusTime(message.created),
    message: message.message,
    read: message.read ? 1 : 0,
    request_id: message.request_id,
    username_initiator: username,
  }));
}
